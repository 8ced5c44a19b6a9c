"""Excel workbooks with openpyxl: score an uploaded workbook in place, and build a starter workbook.

Scoring keeps everything the user made (other sheets, styles, formulas, Excel tables): it finds the
table or header row naming the model's columns, appends prediction and probability columns styled
like the header, and adds a sheet describing the model version, the time and any row errors. Every
value written from user data is neutralised against formula injection. Files are checked before
openpyxl opens them: encrypted or legacy files, broken zips and zip bombs are refused.
"""
from __future__ import annotations

import io
import re
import zipfile
from copy import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableColumn

from ..errors import InvalidInput, PayloadTooLarge
from ..types import RawTable, Signature, example_frame
from .safe_cells import safe_cell
from .scored_output import explanation_columns

MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
MAX_RATIO = 100
MAX_ENTRIES = 10_000
HEADER_SCAN_ROWS = 50
INFO_SHEET = "ScoreBridge"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
HEADER_FONT = Font(bold=True, color="FFFFFF")


def _norm(value: Any) -> str:
    return re.sub(r"[\s_\-]+", "_", str(value).strip().lower()) if value is not None else ""


def check_xlsx(data: bytes | Path) -> None:
    """Refuse what openpyxl should never be handed, with a message the user can act on."""
    if isinstance(data, Path):
        with open(data, "rb") as fh:
            head = fh.read(8)
        source: Any = data
    else:
        head, source = data[:8], io.BytesIO(data)
    if head == OLE_MAGIC:
        raise InvalidInput("the workbook is password-protected (encrypted) or in the old .xls "
                           "format: remove the password, or save it as .xlsx, and upload again")
    try:
        archive = zipfile.ZipFile(source)
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise InvalidInput("the file is not a valid .xlsx workbook (it is not a zip archive)") \
            from None
    if len(entries) > MAX_ENTRIES:
        raise PayloadTooLarge(f"the workbook has {len(entries)} parts, more than {MAX_ENTRIES}")
    total = sum(e.file_size for e in entries)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise PayloadTooLarge(f"the workbook expands to {total // 2**20} MB, more than the "
                              f"{MAX_UNCOMPRESSED_BYTES // 2**20} MB this server opens")
    for e in entries:
        if e.file_size > 1_000_000 and e.file_size > MAX_RATIO * max(e.compress_size, 1):
            raise PayloadTooLarge(f"the workbook part {e.filename[:60]!r} is compressed "
                                  f"{e.file_size // max(e.compress_size, 1)}:1, which looks like "
                                  "a zip bomb; it is not opened")
    if "xl/workbook.xml" not in {e.filename for e in entries}:
        raise InvalidInput("the file is a zip archive but not an Excel workbook")


@dataclass
class Located:
    sheet: str
    header_row: int
    columns: dict[str, int]          # feature -> column index (1-based)
    first_row: int
    last_row: int
    last_col: int
    table: str | None


def _locate(wb: Workbook, signature: Signature) -> Located:
    wanted = {_norm(n): n for n in signature.names}
    best: tuple[int, str, int, list[str]] | None = None
    for ws in wb.worksheets:
        for table in ws.tables.values():
            min_col, min_row, max_col, max_row = range_boundaries(table.ref)
            header = {_norm(ws.cell(min_row, c).value): c for c in range(min_col, max_col + 1)}
            if set(wanted) <= set(header):
                return Located(ws.title, min_row, {wanted[k]: header[k] for k in wanted},
                               min_row + 1, max_row, max_col, table.name)
        for r in range(1, min(ws.max_row, HEADER_SCAN_ROWS) + 1):
            header = {}
            for c in range(1, ws.max_column + 1):
                key = _norm(ws.cell(r, c).value)
                if key and key not in header:
                    header[key] = c
            hits = set(wanted) & set(header)
            if hits == set(wanted):
                last_col = max(c for c in range(1, ws.max_column + 1)
                               if ws.cell(r, c).value not in (None, ""))
                last = r
                for rr in range(r + 1, ws.max_row + 1):
                    if all(ws.cell(rr, header[k]).value in (None, "") for k in wanted):
                        break
                    last = rr
                return Located(ws.title, r, {wanted[k]: header[k] for k in wanted}, r + 1, last,
                               last_col, None)
            if hits and (best is None or len(hits) > best[0]):
                best = (len(hits), ws.title, r, [wanted[k] for k in wanted if k not in header])
    hint = ""
    if best is not None:
        hint = (f"; the closest is sheet {best[1]!r} row {best[2]}, which lacks: "
                + ", ".join(best[3]))
    raise InvalidInput("no table or header row names all the model's columns ("
                       + ", ".join(signature.names) + ")" + hint)


def read_table(data: bytes, signature: Signature) -> tuple[RawTable, Located, Workbook]:
    """The rows to score (cached cell values), where they are, and the workbook to write into."""
    check_xlsx(data)
    try:
        values_wb = load_workbook(io.BytesIO(data), data_only=True)
        wb = load_workbook(io.BytesIO(data))
    except Exception as exc:  # openpyxl raises many types on damaged files
        raise InvalidInput(f"the workbook could not be read ({type(exc).__name__}); open it in "
                           "Excel, save it as .xlsx and try again") from None
    where = _locate(values_wb, signature)
    ws_values = values_wb[where.sheet]
    ws_formulas = wb[where.sheet]
    columns: list[list[Any]] = []
    for name in signature.names:
        col = where.columns[name]
        cells = []
        for r in range(where.first_row, where.last_row + 1):
            value = ws_values.cell(r, col).value
            if value is None and isinstance(ws_formulas.cell(r, col).value, str) and \
                    str(ws_formulas.cell(r, col).value).startswith("="):
                value = "#N/A"  # a formula Excel never calculated: no value to score
            if isinstance(value, datetime):
                value = value.isoformat()
            cells.append(value)
        columns.append(cells)
    table = RawTable(names=list(signature.names), columns=columns,
                     n_rows=max(where.last_row - where.first_row + 1, 0))
    return table, where, wb


def _style_like(target: Any, source: Any) -> None:
    for attr in ("font", "fill", "border", "alignment", "number_format", "protection"):
        setattr(target, attr, copy(getattr(source, attr)))


def write_scores(wb: Workbook, where: Located, result: Any, model: str,
                 signature: Signature) -> bytes:
    """Append the result's columns after the located table and describe the run on a new sheet."""
    ws = wb[where.sheet]
    header_cell = ws.cell(where.header_row, where.last_col)
    classes = result.classes if result.probabilities is not None else None
    headers = ["prediction"] + [f"probability_{c}" for c in classes or ()]
    reasons = explanation_columns(result) if result.explanation is not None else ([], [])
    headers += reasons[0]
    problems: dict[int, list[str]] = {}
    for e in result.errors:
        if e.row is not None:
            problems.setdefault(e.row, []).append(f"{e.column}: {e.message}" if e.column
                                                  else e.message)
    if problems:
        headers.append("scoring_error")
    start = where.last_col + 1
    for j, title in enumerate(headers):
        cell = ws.cell(where.header_row, start + j, title)
        _style_like(cell, header_cell)
        ws.column_dimensions[get_column_letter(start + j)].width = max(12, len(title) + 2)
    for i in range(result.n_rows):
        r = where.first_row + i
        ws.cell(r, start, safe_cell(result.predictions[i]))
        if classes:
            probs = result.probabilities[i]
            for j in range(len(classes)):
                cell = ws.cell(r, start + 1 + j, None if probs is None else probs[j])
                cell.number_format = "0.0000"
        for j, column in enumerate(reasons[1]):
            ws.cell(r, start + 1 + len(classes or ()) + j, safe_cell(column[i]))
        if problems:
            ws.cell(r, start + len(headers) - 1, safe_cell("; ".join(problems.get(i, []))))
    if where.table is not None:
        _extend_table(ws.tables[where.table], headers)
    _info_sheet(wb, where, result, model, len(problems))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _extend_table(table: Table, headers: list[str]) -> None:
    min_col, min_row, max_col, max_row = range_boundaries(table.ref)
    new_ref = f"{get_column_letter(min_col)}{min_row}:{get_column_letter(max_col + len(headers))}{max_row}"
    table.ref = new_ref
    if table.autoFilter is not None:
        table.autoFilter.ref = new_ref
    next_id = max((c.id for c in table.tableColumns), default=0) + 1
    for j, title in enumerate(headers):
        table.tableColumns.append(TableColumn(id=next_id + j, name=title))


def _info_sheet(wb: Workbook, where: Located, result: Any, model: str, bad_rows: int) -> None:
    title = INFO_SHEET
    n = 2
    while title in wb.sheetnames:
        title = f"{INFO_SHEET} ({n})"
        n += 1
    ws = wb.create_sheet(title)
    rows = [
        ("Scored by", "ScoreBridge"), ("Model", model), ("Version", result.version),
        ("Scored at (UTC)", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
        ("Sheet", where.sheet),
        ("Rows", f"{where.first_row}-{where.last_row}" if result.n_rows else "none"),
        ("Rows scored", result.rows_scored), ("Rows with errors", bad_rows),
    ]
    for r, (key, value) in enumerate(rows, start=1):
        ws.cell(r, 1, key).font = Font(bold=True)
        ws.cell(r, 2, safe_cell(value))
    if result.errors:
        top = len(rows) + 2
        for j, head in enumerate(("Sheet row", "Column", "Problem"), start=1):
            cell = ws.cell(top, j, head)
            cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        for i, e in enumerate(result.errors[:10_000], start=top + 1):
            ws.cell(i, 1, where.first_row + e.row if e.row is not None else None)
            ws.cell(i, 2, safe_cell(e.column or ""))
            ws.cell(i, 3, safe_cell(e.message))
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 24
    ws.column_dimensions["C"].width = 80


def score_workbook(data: bytes, signature: Signature, model: str,
                   score: Callable[[RawTable], Any]) -> tuple[bytes, Any]:
    """The workbook with predictions appended, and the score result."""
    table, where, wb = read_table(data, signature)
    result = score(table)
    return write_scores(wb, where, result, model, signature), result


# -- the starter workbook ------------------------------------------------------------------------

def _formulas(name: str, signature: Signature, base_url: str, namespace: str) -> list[tuple[str, str]]:
    last = get_column_letter(len(signature.names))
    rng = f"A2:{last}2"
    out = [
        ("Excel add-in (Windows, Mac, web)", f"={namespace}.PREDICT({rng},\"{name}\")"),
        ("Probability of the positive (last) class",
         f"={namespace}.PREDICT_PROBA({rng},\"{name}\")"),
        ("Whole block at once (spills one value per row)",
         f"={namespace}.PREDICT(A2:{last}1000,\"{name}\")"),
        ("xlwings (Windows desktop with Python)", f"=PREDICT({rng})"),
        ("Without an add-in (Windows Excel, WEBSERVICE)",
         f"=WEBSERVICE(\"{base_url}/excel/v1/predict.txt?model={name}&api_key=YOUR_KEY&x=\""
         f"&ENCODEURL(TEXTJOIN(\",\",FALSE,{rng})))"),
    ]
    if signature.output.kind == "classification":
        out.append(("Probability without an add-in",
                    f"=VALUE(WEBSERVICE(\"{base_url}/excel/v1/predict.txt?model={name}"
                    f"&output=probability&api_key=YOUR_KEY&x=\"&ENCODEURL(TEXTJOIN(\",\",FALSE,{rng}))))"))
    return out


def starter_workbook(name: str, version: int, signature: Signature, description: str,
                     base_url: str, namespace: str, example_rows: int = 3) -> bytes:
    """A workbook to fill in: the model's header row, validation from its signature, examples,
    and an instructions sheet with the formulas that score it."""
    wb = Workbook()
    ws = wb.active
    ws.title = "data"
    lists = None
    examples = example_frame(signature, example_rows)
    for j, col in enumerate(signature.inputs, start=1):
        letter = get_column_letter(j)
        cell = ws.cell(1, j, safe_cell(col.name))
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        ws.column_dimensions[letter].width = max(14, len(col.name) + 4)
        for i, value in enumerate(examples[col.name].tolist(), start=2):
            ws.cell(i, j, safe_cell(value.item() if hasattr(value, "item") else value))
        target = f"{letter}2:{letter}10000"
        if col.categories:
            options = [str(c) for c in col.categories]
            joined = ",".join(options)
            if len(joined) <= 250 and not any("," in o or '"' in o for o in options):
                dv = DataValidation(type="list", formula1=f'"{joined}"', allow_blank=True)
            else:  # long lists live on a hidden sheet
                if lists is None:
                    lists = wb.create_sheet("lists")
                    lists.sheet_state = "hidden"
                for i, option in enumerate(options, start=1):
                    lists.cell(i, j, safe_cell(option))
                ref = f"lists!${letter}$1:${letter}${len(options)}"
                dv = DataValidation(type="list", formula1=ref, allow_blank=True)
            dv.error = f"{col.name} must be one of the values the model knows"
            dv.errorTitle = "Unknown value"
            dv.errorStyle = "warning" if col.accepts_unknown else "stop"
        elif col.type in ("number", "integer"):
            kind = "whole" if col.type == "integer" else "decimal"
            dv = DataValidation(type=kind, operator="between", formula1="-1E+300",
                                formula2="1E+300", allow_blank=True)
            dv.error = f"{col.name} must be a {'whole ' if kind == 'whole' else ''}number"
            dv.errorTitle = "Not a number"
            if col.minimum is not None and col.maximum is not None:
                dv.prompt = (f"Trained on values from {col.minimum:g} to {col.maximum:g}.")
                dv.promptTitle = col.name
                dv.showInputMessage = True
        else:
            continue
        dv.showErrorMessage = True
        ws.add_data_validation(dv)
        dv.add(target)
    ws.freeze_panes = "A2"
    info = wb.create_sheet("instructions", 0)
    info.column_dimensions["A"].width = 48
    info.column_dimensions["B"].width = 110
    rows: list[tuple[str, Any]] = [
        ("Model", safe_cell(name)), ("Version", version), ("About", safe_cell(description)),
        ("Server", base_url), ("", ""),
        ("How to score the 'data' sheet", ""),
    ]
    rows += _formulas(name, signature, base_url, namespace)
    rows += [("Or upload the filled workbook", f"{base_url}/api/v1/models/{name}/score-workbook"
              " (or: scorebridge score " + name + " workbook.xlsx -o scored.xlsx)"),
             ("", ""), ("Columns", "")]
    for col in signature.inputs:
        if col.categories:
            what = "one of: " + ", ".join(str(c) for c in col.categories[:30])
        elif col.type in ("number", "integer"):
            what = ("whole number" if col.type == "integer" else "number") + (
                f" (trained on {col.minimum:g} to {col.maximum:g})"
                if col.minimum is not None and col.maximum is not None else "")
        else:
            what = col.type
        rows.append((safe_cell(col.name), safe_cell(what)))
    for r, (key, value) in enumerate(rows, start=1):
        info.cell(r, 1, key).font = Font(bold=True)
        cell = info.cell(r, 2, value)
        if isinstance(value, str) and value.startswith("="):
            cell.data_type = "s"  # shown as text to copy, not evaluated here
    wb.active = 1
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
