"""A strict check of an OData CSDL XML document (EDMX 4.0/4.01) against the rules of OASIS's
"OData Common Schema Definition Language (CSDL) XML Representation", for the parts our feed uses.

Written from the specification, not from the server's code: names are checked with their own
reading of the "Simple Identifier" rule (1 to 128 characters; `_` or a letter or letter number
first; then `_`, letters, letter numbers, decimal digits, marks, connector punctuation or format
characters), and every element the document holds must be one this check knows, in the order the
specification's schema gives (references before the data services).
"""
from __future__ import annotations

import unicodedata

from defusedxml import ElementTree as ET

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
PRIMITIVES = {f"Edm.{t}" for t in (
    "Binary", "Boolean", "Byte", "Date", "DateTimeOffset", "Decimal", "Double", "Duration", "Guid",
    "Int16", "Int32", "Int64", "SByte", "Single", "Stream", "String", "TimeOfDay")}
FIRST = {"Lu", "Ll", "Lt", "Lm", "Lo", "Nl"}
REST = FIRST | {"Nd", "Mn", "Mc", "Pc", "Cf"}


def simple_identifier(name: str | None) -> bool:
    return (name is not None and 1 <= len(name) <= 128
            and all(c == "_" or unicodedata.category(c) in (FIRST if i == 0 else REST)
                    for i, c in enumerate(name)))


def namespace(name: str | None) -> bool:
    return name is not None and len(name) <= 511 and all(map(simple_identifier, name.split(".")))


class CsdlError(AssertionError):
    pass


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise CsdlError(what)


def _children(element, allowed: set[str], where: str) -> list:
    kids = list(element)
    for kid in kids:
        _check(kid.tag in allowed, f"{where}: unexpected element {kid.tag}")
    return kids


def _annotations(element, terms: set[str], where: str) -> dict[str, str]:
    found = {}
    for note in element.findall(f"{EDM}Annotation"):
        term = note.get("Term") or ""
        qualifier, _, name = term.rpartition(".")
        _check(qualifier in terms and simple_identifier(name),
               f"{where}: annotation term {term!r} is not from a referenced vocabulary")
        if name == "Description":
            _check(note.get("String") is not None, f"{where}: Core.Description without String")
        found[name] = note.get("String") or ""
    return found


def _entity_type(element, terms: set[str], where: str) -> dict[str, dict]:
    _children(element, {f"{EDM}Key", f"{EDM}Property", f"{EDM}Annotation"}, where)
    props: dict[str, dict] = {}
    folded: set[str] = set()
    for prop in element.findall(f"{EDM}Property"):
        name = prop.get("Name")
        _check(simple_identifier(name), f"{where}: property name {name!r} is not a simple identifier")
        _check(name not in props, f"{where}: two properties named {name!r}")
        # 4.01: identifiers of one scope SHOULD NOT differ only by case (Power BI's model needs it)
        _check(name.lower() not in folded, f"{where}: properties differing only by case: {name!r}")
        folded.add(name.lower())
        _check(prop.get("Type") in PRIMITIVES, f"{where}.{name}: type {prop.get('Type')!r}")
        _check(prop.get("Nullable", "true") in ("true", "false"), f"{where}.{name}: Nullable")
        _children(prop, {f"{EDM}Annotation"}, f"{where}.{name}")
        props[name] = {"type": prop.get("Type"), "nullable": prop.get("Nullable", "true"),
                       "annotations": _annotations(prop, terms, f"{where}.{name}")}
    keys = element.findall(f"{EDM}Key")
    _check(len(keys) == 1, f"{where}: an entity type needs one Key")
    refs = _children(keys[0], {f"{EDM}PropertyRef"}, f"{where} key")
    _check(bool(refs), f"{where}: empty key")
    for ref in refs:
        name = ref.get("Name")
        _check(name in props, f"{where}: key {name!r} is not a property")
        _check(props[name]["nullable"] == "false", f"{where}: key {name!r} is nullable")
    return props


def assert_valid_csdl(document: bytes | str) -> dict[str, dict[str, dict]]:
    """Check ``document``; the entity sets it declares, each as ``{"type": ..., "annotations":
    ..., "props": {name: {"type", "nullable", "annotations"}}}``."""
    root = ET.fromstring(document)
    _check(root.tag == f"{EDMX}Edmx" and root.get("Version") in ("4.0", "4.01"), "root: edmx:Edmx")
    kids = _children(root, {f"{EDMX}Reference", f"{EDMX}DataServices"}, "Edmx")
    tags = [k.tag for k in kids]
    _check(tags.count(f"{EDMX}DataServices") == 1 and tags[-1] == f"{EDMX}DataServices",
           "Edmx: references, then one DataServices")
    terms: set[str] = set()
    for ref in root.findall(f"{EDMX}Reference"):
        _check(bool(ref.get("Uri")), "Reference without Uri")
        for inc in _children(ref, {f"{EDMX}Include"}, "Reference"):
            _check(namespace(inc.get("Namespace")), f"Include namespace {inc.get('Namespace')!r}")
            terms.add(inc.get("Namespace"))
            if inc.get("Alias") is not None:
                _check(simple_identifier(inc.get("Alias")), "Include alias")
                terms.add(inc.get("Alias"))
    services = root.find(f"{EDMX}DataServices")
    schemas = _children(services, {f"{EDM}Schema"}, "DataServices")
    types: dict[str, dict] = {}
    containers = []
    for schema in schemas:
        ns = schema.get("Namespace")
        _check(namespace(ns), f"schema namespace {ns!r}")
        names: set[str] = set()
        for kid in _children(schema, {f"{EDM}EntityType", f"{EDM}EntityContainer"}, ns):
            name = kid.get("Name")
            _check(simple_identifier(name), f"{ns}: name {name!r} is not a simple identifier")
            _check(name not in names, f"{ns}: two schema children named {name!r}")
            names.add(name)
            if kid.tag == f"{EDM}EntityType":
                types[f"{ns}.{name}"] = _entity_type(kid, terms, f"{ns}.{name}")
            else:
                containers.append(kid)
    _check(len(containers) == 1, "a service has exactly one entity container")
    sets: dict[str, dict] = {}
    for entity_set in _children(containers[0], {f"{EDM}EntitySet"}, "container"):
        name = entity_set.get("Name")
        _check(simple_identifier(name), f"entity set name {name!r} is not a simple identifier")
        _check(name not in sets, f"two entity sets named {name!r}")
        type_name = entity_set.get("EntityType")
        _check(type_name in types, f"{name}: entity type {type_name!r} is not declared")
        _children(entity_set, {f"{EDM}Annotation"}, name)
        sets[name] = {"type": type_name, "props": types[type_name],
                      "annotations": _annotations(entity_set, terms, name)}
    return sets
