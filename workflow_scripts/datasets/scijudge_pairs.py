"""Build the SciJudge citation preference pairs: train / in-domain test / temporal-OOD test, with prompts.

Reads papers.parquet and citations.parquet, selects the pairs of each split (:mod:`scijudge_splits`: date bounds,
held-out papers, duplicates, the rules of :mod:`pair_rules` with the thresholds from config), places the more-cited
paper in position A or B by a seeded coin, renders the SciJudge prompt, and writes one parquet per split (readable
by ``datasets``), a stats JSON and a dataset card. Splits never share a paper, nor one paper under two ids.

    python -m workflow_scripts.datasets.scijudge_pairs --papers papers.parquet --citations citations.parquet \
        --config-json '{"today": ..., "pairs": {...}}' --seed 1234 --train train.parquet ...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import string
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

from workflow_scripts.common.memory import keep_polars_freed_memory, reuse_freed_memory

keep_polars_freed_memory()  # polars reads its allocator's settings as it loads: before it is imported (memory.py)

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from workflow_scripts.common.cli import json_arg, parser, setup_logging  # noqa: E402
from workflow_scripts.common.io import atomic_path, write_json_atomic, write_text_atomic  # noqa: E402
from workflow_scripts.datasets.scijudge_card import FIELDS, render_card  # noqa: E402
from workflow_scripts.datasets.scijudge_splits import SizeError, citation_snapshot, load_papers, select  # noqa: E402

log = logging.getLogger(__name__)

SPLITS = ("train", "test_id", "test_ood")
PAPER_ATTRS = {  # output suffix -> papers column
    "arxiv_id": "arxiv_id",
    "title": "title",
    "abstract": "abstract",
    "date": "published",
    "category": "field",
    "subcategory": "subcategory",
    "citations": "citations",
}
TEXT_ATTRS = ["title", "abstract"]  # read only for papers in pairs, after pairing
# columns of few distinct values; a dictionary of unique texts (titles, abstracts, prompts) only costs time
DICTIONARY_COLUMNS = ["split", "correct_answer", "messages.list.element.role",
                      *(f"paper_{s}_{k}" for s in "ab" for k in ("category", "subcategory", "date"))]
THRESHOLD_KEYS = {"train": "scijudge.pairs", "test_id": "scijudge.pairs.test_id", "test_ood": "scijudge.pairs.test_ood"}


class EmptySplitError(ValueError):
    """A split would have no pairs: training or evaluation on it would fail (or mean nothing) much later."""


@dataclass
class PairConfig:
    """The ``scijudge`` config block (validated and defaulted by the schema before it gets here)."""

    today: str
    system_prompt: str
    user_template: str
    pairs: dict

    @classmethod
    def from_block(cls, block: dict) -> "PairConfig":
        keys = [f.name for f in fields(cls)]
        missing = [k for k in keys if k not in block]
        if missing:
            raise KeyError(f"scijudge config block lacks key(s) {missing}")
        return cls(**{k: block[k] for k in keys})


PLACEHOLDERS = {"today", *(f"{a}_{s}" for a in ("title", "abstract", "date") for s in ("a", "b"))}


def template_pieces(system_prompt: str, template: str) -> list[tuple[str, str]]:
    """The prompt (system prompt, then the user template) as ("text", literal) and ("field", placeholder) pieces;
    KeyError for a placeholder that no pair can fill."""
    pieces = [("text", system_prompt)]
    for literal, name, spec, conv in string.Formatter().parse(template):
        if literal:
            pieces.append(("text", literal))
        if name is not None:
            if name not in PLACEHOLDERS or spec or conv:
                raise KeyError(f"user_template placeholder {{{name}}} is not one of {sorted(PLACEHOLDERS)}")
            pieces.append(("field", name))
    return pieces


def render_prompts(table: pa.Table, pieces: list[tuple[str, str]], today: str) -> pa.Array:
    """System prompt + rendered user template per row, one string each, written by one Arrow kernel straight from
    the table's columns (no per-row Python, no copy through another library); :func:`messages_array` cuts it."""
    def value(kind: str, text: str):
        if kind == "text" or text == "today":
            return pa.scalar(today if text == "today" else text, pa.large_string())
        attr, side = text.rsplit("_", 1)
        # one array in, so that one array (not a chunked one, to be copied again) comes out; a column of one chunk
        # is taken as it is (combine_chunks would copy every title and abstract once more)
        column = table.column(f"paper_{side}_{attr}")
        return (column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()).cast(pa.large_string())

    return pc.binary_join_element_wise(*(value(k, t) for k, t in pieces), pa.scalar("", pa.large_string()))


def assign_sides(pairs: pl.DataFrame, papers: pl.DataFrame, split: str, seed: int) -> pl.DataFrame:
    """Place the more-cited paper in A or B by a seeded coin; attach the light attributes of both papers (``pairs``
    name the papers by id and by row of ``papers``)."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    hi_is_a = pl.col("hi_is_a")
    sides = pairs.with_columns(pl.Series("hi_is_a", rng.integers(0, 2, pairs.height).astype(bool))).select(
        (pl.lit(f"{split}-") + pl.col("hi_id") + pl.lit("-") + pl.col("lo_id")).alias("pair_id"),
        pl.when(hi_is_a).then(pl.col("hi_row")).otherwise(pl.col("lo_row")).alias("row_a"),
        pl.when(hi_is_a).then(pl.col("lo_row")).otherwise(pl.col("hi_row")).alias("row_b"),
        pl.when(hi_is_a).then(pl.lit("A")).otherwise(pl.lit("B")).alias("correct_answer"),
    )
    light = {k: v for k, v in PAPER_ATTRS.items() if k not in TEXT_ATTRS} | {"file_row": "file_row"}
    attrs = {side: papers.select(pl.col(v).alias(f"paper_{side}_{k}") for k, v in light.items()).gather(sides[f"row_{side}"])
             for side in ("a", "b")}
    return pl.concat([sides.drop("row_a", "row_b"), attrs["a"], attrs["b"]], how="horizontal")


def messages_array(system_prompt: str, prompts: pa.Array) -> pa.Array:
    """[{system}, {user}] per row as an Arrow list<struct<role, content>>, from ``prompts`` (:func:`render_prompts`:
    system prompt + user prompt per row): the contents of both turns are its bytes cut after the system prompt,
    so no prompt is copied (polars' own struct-and-list route costs several times more on millions of prompts)."""
    prompts = prompts.cast(pa.large_string())
    n, cut = len(prompts), len(system_prompt.encode())
    offsets = np.frombuffer(prompts.buffers()[1], dtype=np.int64)[prompts.offset : prompts.offset + n + 1]
    turn_offsets = np.empty(2 * n + 1, dtype=np.int64)  # row i: system at 2i, user at 2i + 1
    turn_offsets[0::2], turn_offsets[1:-1:2] = offsets, offsets[:-1] + cut
    contents = pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(turn_offsets), prompts.buffers()[2])
    roles = pa.array(["system", "user"], pa.large_string()).take(pa.array(np.tile(np.array([0, 1], dtype=np.int8), n)))
    turns = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    return pa.LargeListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int64)), turns)


class FileThread:
    """A binary file written by a thread of its own, for a writer (the parquet writer, on the step's busiest thread)
    whose time should go to encoding and compressing, not to the page cache: copying a gigabyte into it, and the
    reclaim that this takes on a machine whose memory is full of cache, runs beside it. At most ``depth`` writes
    wait, each a copy (the caller may reuse its buffer); a failed write is raised by the next write or by close."""

    def __init__(self, path, depth: int = 16):
        self._file = open(path, "wb")
        self._writes: queue.Queue = queue.Queue(maxsize=depth)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._drain, name="file-writer", daemon=True)
        self._thread.start()
        self.closed = False

    def _drain(self) -> None:
        while (data := self._writes.get()) is not None:
            if self._error is None:  # after a failure, keep taking writes so that no writer waits forever
                try:
                    self._file.write(data)
                except OSError as exc:
                    self._error = exc

    def write(self, data) -> int:
        if self._error is not None:
            raise self._error
        self._writes.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do before close, which waits for every write."""

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._writes.put(None)
            self._thread.join()
            self._file.close()
            if self._error is not None:
                raise self._error

    def __enter__(self) -> "FileThread":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
            return
        with contextlib.suppress(OSError):  # an error is on its way out already; still stop the thread
            self.close()


def write_split(sides: pl.DataFrame, texts: pl.DataFrame, split: str, block: PairConfig, path, chunk_rows: int) -> None:
    """Render prompts and write rows chunk by chunk (parquet row groups): one chunk of prompts in memory at a time,
    the compression of one chunk overlapping the rendering of the next. Small chunks are faster, not only leaner:
    their buffers are reused by the allocators, where large ones are returned and faulted in again each time.
    ``text_a``/``text_b``: each side's row in ``texts`` (title, abstract)."""
    pieces = template_pieces(block.system_prompt, block.user_template)
    paper_columns = [f"paper_{s}_{k}" for s in ("a", "b") for k in PAPER_ATTRS]
    # exits in reverse: the compressor finishes its chunk, the file thread its writes, then the file is renamed
    with atomic_path(path) as tmp, FileThread(tmp) as sink, ThreadPoolExecutor(1) as compressor:
        writer, pending = None, None
        for start in range(0, max(sides.height, 1), chunk_rows):
            chunk = sides.slice(start, chunk_rows)
            for side in ("a", "b"):
                text = texts.gather(chunk[f"text_{side}"])
                chunk = chunk.with_columns([text[c].alias(f"paper_{side}_{c}") for c in TEXT_ATTRS])
            table = chunk.select("pair_id", pl.lit(split).alias("split"), "correct_answer", *paper_columns).to_arrow()
            messages = messages_array(block.system_prompt, render_prompts(table, pieces, block.today))
            table = table.add_column(2, "messages", messages)
            if writer is None:
                # snappy: twice as fast as zstd on this text for ~1.4x the bytes; the write is the step's largest cost
                writer = pq.ParquetWriter(sink, table.schema, compression="snappy", write_statistics=False,
                                          use_dictionary=DICTIONARY_COLUMNS)
            if pending is not None:
                pending.result()  # at most one chunk waits for compression: memory stays bounded
            pending = compressor.submit(writer.write_table, table)
        pending.result()
        writer.close()


def split_stats(sides: pl.DataFrame) -> dict:
    by_field = sides.group_by("paper_a_category").len().sort("paper_a_category")
    n_a = sides.filter(pl.col("correct_answer") == "A").height
    return {
        "pairs": sides.height,
        "per_field": {f: 0 for f in FIELDS} | dict(zip(by_field["paper_a_category"], by_field["len"])),
        "answer_A": n_a,
        "answer_B": sides.height - n_a,
        "share_A": round(n_a / sides.height, 4) if sides.height else None,
        "papers": 2 * sides.height,
    }


def build(papers_path: str, citations_path: str, block: PairConfig, seed: int, outputs: dict[str, str],
          chunk_rows: int = 20_000) -> dict:
    """Select the pairs, write one parquet per split (``outputs``: split -> path) and return the stats."""
    cfg = block.pairs
    until, today = dt.date.fromisoformat(cfg["until_date"]), dt.date.fromisoformat(block.today)
    papers, counts = load_papers(papers_path, citations_path, until, today)
    chosen = select(papers, cfg, seed)
    del papers
    empty = [s for s in SPLITS if chosen.pairs[s].height == 0]
    if empty:
        raise EmptySplitError(_empty_splits_message(empty, chosen, cfg))
    sides = {s: assign_sides(chosen.pairs[s], chosen.papers, s, seed) for s in SPLITS}
    # titles and abstracts of the paired papers only, found by their row in the file (integers, no id lookup), in
    # one chunk: gathering from the chunks of a read by row group costs 3 times as much, in fresh memory each time
    needed = np.zeros(pl.scan_parquet(papers_path).select(pl.len()).collect().item(), dtype=bool)
    for s in SPLITS:
        for x in "ab":
            needed[sides[s][f"paper_{x}_file_row"].to_numpy()] = True
    text_row = np.cumsum(needed, dtype=np.int64) - 1  # file row -> row of texts
    texts = (pl.scan_parquet(papers_path).with_row_index("file_row")
             .filter(pl.col("file_row").is_in(pl.Series(np.flatnonzero(needed), dtype=pl.UInt32).implode()))
             .select(TEXT_ATTRS).collect().rechunk())
    for s in SPLITS:
        at = {f"text_{x}": pl.Series(text_row[sides[s][f"paper_{x}_file_row"].to_numpy()]) for x in "ab"}
        write_split(sides[s].with_columns(**at), texts, s, block, outputs[s], chunk_rows)
    stats = {
        "inputs": counts | chosen.counts,
        "citation_snapshot": citation_snapshot(citations_path),
        "duplicates": chosen.duplicates,
        "test_id_fields": chosen.test_id_fields,
        "splits": {s: split_stats(sides[s]) for s in SPLITS},
    }
    for s in SPLITS:
        st = stats["splits"][s]
        log.info("%s: %d pairs, per field %s, share A %s", s, st["pairs"], st["per_field"], st["share_A"])
    return stats


def _empty_splits_message(empty: list[str], chosen, cfg: dict) -> str:
    """Which splits are empty and why: a period without papers (cutoff, until_date) or thresholds no pair meets."""
    cutoff, c = cfg["cutoff_year"], chosen.counts
    papers = chosen.papers
    span = f"{papers['published'].min()}..{papers['published'].max()}" if papers.height else "none"
    lines = [
        f"no pairs for split(s) {empty}; papers with a citation count up to until_date {cfg['until_date']}: "
        f"{c['papers_up_to_cutoff']} first published up to cutoff_year {cutoff} ({c['papers_held_out']} held out for "
        f"test_id), {c['papers_after_cutoff']} after it (first versions {span})"
    ]
    period = {"train": c["papers_up_to_cutoff"] - c["papers_held_out"], "test_id": c["papers_held_out"],
              "test_ood": c["papers_after_cutoff"] - c["papers_after_cutoff_below_min_citations"]}
    where = {"train": f"up to {cutoff}", "test_id": f"up to {cutoff}, held out",
             "test_ood": f"after {cutoff} with >= {cfg['test_ood']['min_citations']} citation(s)"}
    for split in empty:
        if not period[split]:
            fix = ("raise scijudge.pairs.test_id.held_out_share" if split == "test_id" and c["papers_up_to_cutoff"]
                   else "change scijudge.pairs.cutoff_year (or until_date)")
            why = f"its period ({where[split]}) holds no paper: {fix}"
        elif split == "train" and c["train_pairs_outside_train_fields"]:
            why = (f"its {c['train_pairs_outside_train_fields']} pair(s) are all outside scijudge.pairs.train_fields "
                   f"{cfg['train_fields']}")
        else:
            why = f"no pair of its {period[split]} papers ({where[split]}) meets the thresholds of {THRESHOLD_KEYS[split]}"
        lines.append(f"{split}: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--papers", required=True, help="papers.parquet")
    p.add_argument("--citations", required=True, help="citations.parquet")
    p.add_argument("--config-json", type=json_arg, required=True, help="the scijudge config block as JSON")
    p.add_argument("--seed", type=int, required=True)
    for s in SPLITS:
        p.add_argument(f"--{s.replace('_', '-')}", required=True, help=f"output parquet of the {s} split")
    p.add_argument("--stats", required=True, help="output stats JSON")
    p.add_argument("--card", required=True, help="output dataset card (markdown)")
    p.add_argument("--chunk-rows", type=int, default=20_000, help="rows rendered and written at a time (bounds memory)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    reuse_freed_memory()  # numpy temporaries by the gigabyte: see common/memory.py
    block = PairConfig.from_block(args.config_json)
    try:
        outputs = {s: getattr(args, s) for s in SPLITS}
        stats = build(args.papers, args.citations, block, args.seed, outputs, args.chunk_rows)
    except (EmptySplitError, SizeError) as exc:
        raise SystemExit(f"scijudge pairs: {exc}") from None
    write_json_atomic(args.stats, stats)
    write_text_atomic(args.card, render_card(stats, block))


if __name__ == "__main__":
    main()
