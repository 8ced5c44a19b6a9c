"""``score``: a CSV, XLSX or Parquet file scored into another, with a progress bar."""
from __future__ import annotations

import os
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .common import backend, console, err_console, handle_errors, key_option, main, url_option


@main.command()
@click.argument("name")
@click.argument("input", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (.csv, .xlsx, .parquet); default INPUT.scored.csv.")
@click.option("--version", "version", type=int, help="Score with this version.")
@click.option("--alias", help="Score with the version this alias points at.")
@click.option("--chunk-rows", type=click.IntRange(1, 100_000), default=10_000, show_default=True)
@url_option
@key_option
@handle_errors
def score(name: str, input: Path, output: Path | None, version: int | None, alias: str | None,
          chunk_rows: int, url: str | None, key: str | None) -> None:
    """Score a CSV/XLSX/Parquet file; every input column is kept, predictions appended."""
    from ..codecs.file_reader import count_rows, iter_chunks
    from ..codecs.file_writer import TableWriter
    from ..codecs.scored_output import failed_rows, scored_table

    output = output or input.with_name(input.stem + ".scored.csv")
    client = backend(url, key)
    if input.suffix.lower() == ".xlsx" and output.suffix.lower() == ".xlsx":
        # a workbook in, the same workbook out: sheets, styles and formulas kept
        with console.status(f"scoring {input.name}…"):
            data, used = client.score_workbook(name, input.read_bytes(), version)
        tmp = output.with_name(f".{output.name}.partial")
        tmp.write_bytes(data)
        os.replace(tmp, output)
        console.print(f"scored workbook {input.name} with {name} v{used} -> {output} "
                      "(see its ScoreBridge sheet)")
        return
    total = count_rows(input)
    signature = client.get_model(name).get("signature") or {}
    writer = TableWriter(output, {c["name"]: c["type"] for c in signature.get("inputs", [])})
    bad_rows = 0
    used_version = None
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    try:
        with Progress(*columns, console=err_console, transient=False) as progress:
            task = progress.add_task("score", total=total)
            for chunk in iter_chunks(input, chunk_rows):
                response = client.score_frame(name, chunk.frame, version, alias, chunk.malformed)
                used_version = response["version"]
                # pin the version for the rest of the file, so every row is scored by one version
                version = version or used_version
                scored = scored_table(chunk.arrow(), response, chunk.malformed)
                bad_rows += failed_rows(scored)
                writer.write(scored)
                progress.advance(task, len(chunk))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    console.print(f"scored {writer.rows} rows with {name} v{used_version} -> {output}"
                  + (f" ([yellow]{bad_rows} rows with errors[/yellow], see the 'error' column)"
                     if bad_rows else ""))
