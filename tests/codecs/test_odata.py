"""OData property names: the rule that makes any column name a CSDL simple identifier, its
collisions, and the metadata document built from such names."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest
from defusedxml import ElementTree as ET
from sqlalchemy import String, column, create_engine, select, values

from server.codecs.odata import (
    EntitySet,
    Prop,
    identifiers,
    is_identifier,
    metadata_xml,
    page,
    parse_options,
    to_identifier,
    where_clause,
)
from server.errors import MalformedRequest
from tests.csdl import assert_valid_csdl, simple_identifier
from tests.live import ROOT


@pytest.mark.parametrize("name", ["tenure_months", "Größe", "_x", "Ⅻ_roman", "顧客", "café",
                                  "cafe\u0301", "a\u200db", "x" * 128])
def test_a_valid_name_keeps_itself(name):
    assert simple_identifier(name) and is_identifier(name)
    assert to_identifier(name) == name and identifiers([name]) == [name]


@pytest.mark.parametrize("column, prop", [
    ("Monthly Charges ($)", "Monthly_Charges____"),  # one "_" per character that cannot be
    ("tenure-months", "tenure_months"),
    ("2nd contract", "_2nd_contract"),                # no digit first
    ("\u0301accent", "_\u0301accent"),                # nor a mark
    ("Ümsatz €", "Ümsatz__"),
    ("", "_"),
    ("($)", "___"),
    ("x" * 130, "x" * 128),
    ("a\x00b\ud800", "a_b_"),
])
def test_the_rule(column, prop):
    assert not is_identifier(column)
    assert to_identifier(column) == prop and simple_identifier(prop)


def test_collisions_take_the_first_free_suffix_and_valid_names_go_first():
    assert identifiers(["a b", "a-b", "a_b", "a_b_2"]) == ["a_b_3", "a_b_4", "a_b", "a_b_2"]
    assert identifiers(["Region", "region", "REGION"]) == ["Region", "region_2", "REGION_3"]
    assert identifiers(["row", "Job", "job id"], reserved=["Row", "Job"]) == [
        "row_2", "Job_2", "job_id"]
    long_a, long_b = "y" * 200 + "a", "y" * 200 + "b"
    first, second = identifiers([long_a, long_b])
    assert first == "y" * 128 and second == "y" * 126 + "_2"


def test_any_names_give_distinct_identifiers_the_same_in_every_process():
    rng = random.Random(19)
    alphabet = "aZ_ -$().9é\u0301ß€\u200d\x01Ⅻ顧 " + "".join(chr(rng.randrange(0x20, 0x3000))
                                                        for _ in range(40))
    names = list(dict.fromkeys("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
                               for _ in range(400)))
    got = identifiers(names, reserved=["Row"])
    assert all(simple_identifier(n) for n in got)
    assert len({n.lower() for n in got} | {"row"}) == len(names) + 1
    # deterministic: another interpreter (another hash seed, as another worker) agrees
    script = ("import json, sys; from server.codecs.odata import identifiers; "
              "print(json.dumps(identifiers(json.load(sys.stdin), reserved=['Row'])))")
    import json

    other = subprocess.run([sys.executable, "-c", script], input=json.dumps(names), text=True,
                           capture_output=True, cwd=ROOT, env={"PYTHONHASHSEED": "7",
                                                               "PYTHONPATH": str(ROOT)},
                           check=True)
    assert json.loads(other.stdout) == got


def test_metadata_keeps_any_original_name_as_valid_xml():
    props = (Prop("Id", "Edm.Int32", False), Prop("a_b_", "Edm.String", source="a\x01b\ud800"),
             Prop("x_y", "Edm.Double", source='x <"&"> y'), Prop("same", "Edm.Int64", source="same"))
    entity = EntitySet("Things_a_b", "Thing_a_b", ("Id",), props, lambda: select(), ("Id",),
                       description="things of model a-b")
    document = metadata_xml([entity])
    sets = assert_valid_csdl(document)
    thing = sets["Things_a_b"]
    assert thing["annotations"] == {"Description": "things of model a-b"}
    assert thing["props"]["a_b_"]["annotations"] == {"Description": "a\ufffdb\ufffd"}
    assert thing["props"]["x_y"]["annotations"] == {"Description": 'x <"&"> y'}
    assert thing["props"]["same"]["annotations"] == {}
    assert ET.fromstring(document.encode("utf-8")) is not None  # a UTF-8 body parses too


def test_filter_names_properties_in_any_script():
    columns = {name: column(name) for name in ("Größe", "Ümsatz__", "顧客", "cafe\u0301")}
    clause = where_clause("Ümsatz__ gt 1 and 顧客 eq 'x' and cafe\u0301 lt Größe", columns)
    sql = str(clause.compile(compile_kwargs={"literal_binds": True}))
    assert all(name in sql for name in columns), sql
    with pytest.raises(MalformedRequest, match="unknown property"):
        where_clause("Umsatz gt 1", columns)


def _rows_set(**where_the_model_is):
    """A set of three rows of models a, b and c (as a VALUES table, no registry needed)."""
    props = (Prop("Model", "Edm.String", False), Prop("N", "Edm.String", False))
    table = values(column("Model", String), column("N", String), name="rows").data(
        [("a", "1"), ("b", "2"), ("c", "3")])
    return EntitySet("Rows", "Row", ("N",), props, lambda: select(table.cte("t")), ("N",),
                     **where_the_model_is)


@pytest.mark.parametrize("entity, shown, kept", [
    (_rows_set(model_prop="Model"), True, ["1", "3"]),   # rows cut to the caller's models
    (_rows_set(model="a"), True, ["1", "2", "3"]),       # one model's set, the caller's
    (_rows_set(model="b"), False, []),                   # another model's set
    (_rows_set(), False, []),                            # rows of no model: unrestricted only
])
def test_a_caller_limited_to_some_models_sees_their_rows_only(entity, shown, kept):
    engine = create_engine("sqlite://")
    only = frozenset({"a", "c"})
    opts = parse_options({}, entity, count=True)
    with engine.connect() as session:
        rows, total, _ = page(session, entity, opts, only=only)
        every, every_total, _ = page(session, entity, opts)
        filtered, _, _ = page(session, entity, parse_options({"$filter": "Model eq 'b'"}, entity),
                              only=only)
    engine.dispose()
    assert entity.shown_to(only) is shown and entity.shown_to(None)
    assert [r["N"] for r in rows] == kept and total == len(kept)
    assert every_total == 3 and len(every) == 3
    if entity.model is None:  # (a one-model set's own query holds only that model's rows)
        assert filtered == []  # $filter reaches no other model's rows
