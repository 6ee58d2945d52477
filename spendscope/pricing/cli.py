"""``spendscope pricing list|check|import|reprice``: a thin shell over the table, the check, the
importer and the collector API.

``spendscope/cli.py`` calls :func:`register`; each subcommand sets ``func(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from spendscope.client import ApiError, add_api_option, client_from_env
from spendscope.isotime import parse_since
from spendscope.pricing.build import PriceSources, build_price_table, extra_table_refs
from spendscope.pricing.fetch import read_source
from spendscope.pricing.foreign import FORMATS, parse_foreign
from spendscope.pricing.importing import compare_foreign, render_price_file
from spendscope.pricing.loading import PriceDataError
from spendscope.pricing.model import money_str
from spendscope.pricing.table import PriceTable

__all__ = ["main", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pricing`` with its ``list``, ``check`` and ``reprice`` subcommands."""
    pricing = subparsers.add_parser("pricing", help="the OpenAI price table", description=__doc__)
    sub = pricing.add_subparsers(dest="pricing_command", required=True)

    p_list = sub.add_parser("list", help="show the price table")
    p_list.add_argument("--json", action="store_true", help='print {"rows": [...]}')
    p_list.add_argument("--at", type=_iso_datetime, help="only the rows in force at this ISO time")
    p_list.add_argument(
        "--config", help="apply [[pricing.overrides]] from this TOML file (or $SPENDSCOPE_CONFIG)"
    )
    p_list.set_defaults(func=_cmd_list)

    p_check = sub.add_parser(
        "check", help="compare the table with genai-prices and LiteLLM; exit 1 on unreviewed gaps"
    )
    p_check.add_argument("--json", action="store_true")
    p_check.add_argument("--at", type=_iso_datetime, help="compare the prices in force at this ISO time")
    p_check.add_argument(
        "--litellm",
        default=os.environ.get("SPENDSCOPE_LITELLM_PRICES"),
        help="LiteLLM's price JSON, the litellm wheel that ships it, or an http(s) URL "
        "(default $SPENDSCOPE_LITELLM_PRICES, else the wheel `make setup` puts in .cache/litellm)",
    )
    p_check.set_defaults(func=_cmd_check)

    p_import = sub.add_parser(
        "import",
        help="compare another project's OpenAI prices with the table; write what it lacks",
        description="Read LiteLLM's model-price JSON or genai-prices' data (a file or an http(s) URL), "
        "list the models the table in force lacks and the prices it disagrees with, and with --write "
        "save the missing models as a price file for [pricing] extra_tables.",
    )
    p_import.add_argument("source", help="a file or an http(s) URL")
    p_import.add_argument("--format", required=True, choices=FORMATS, dest="source_format")
    p_import.add_argument("--write", metavar="FILE", help="write the models the table lacks to FILE")
    p_import.add_argument("--json", action="store_true", help="print the report as JSON")
    p_import.add_argument(
        "--config", help="compare with the table under this config (overrides, extra tables)"
    )
    p_import.add_argument("--at", type=_iso_datetime, help="compare the prices in force at this ISO time")
    p_import.set_defaults(func=_cmd_import)

    p_reprice = sub.add_parser("reprice", help="ask the running collector to re-price calls since a time")
    p_reprice.add_argument(
        "--since", type=parse_since, required=True, help="ISO date/time (UTC unless zoned), or 7d, 24h ..."
    )
    add_api_option(p_reprice)
    p_reprice.set_defaults(func=_cmd_reprice)


def main(argv: list[str] | None = None) -> int:
    """Run the pricing commands on their own: ``python -m spendscope.pricing.cli list``."""
    parser = argparse.ArgumentParser(prog="spendscope")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["pricing", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.func(args)
    return result


def _iso_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _load_table(config: str | None) -> PriceTable:
    """The table the collector would run with under ``config``: overrides and extra tables applied."""
    path = config or os.environ.get("SPENDSCOPE_CONFIG")
    if not path:
        return build_price_table()
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    pricing = doc.get("pricing", {})
    if not isinstance(pricing, dict):
        raise PriceDataError(f"{path}: [pricing] must be a table")
    sources = PriceSources.load(
        pricing.get("overrides", []), extra_table_refs(pricing.get("extra_tables"), path)
    )
    return build_price_table(sources)


def _cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        table = _load_table(args.config)
    except (OSError, tomllib.TOMLDecodeError, PriceDataError) as exc:
        print(f"spendscope pricing list: {exc}", file=sys.stderr)
        return 2
    rows = table.rows(args.at)
    shadowed = [s.as_json() for s in table.shadowed() if s.fields]
    if args.json:
        json.dump({"version": table.version, "rows": rows, "shadowed": shadowed}, out, indent=1)
        out.write("\n")
        return 0
    header = (
        "model",
        "tier",
        "valid_from",
        "valid_to",
        "origin",
        "input",
        "cached",
        "cache_write",
        "output",
        "other",
    )
    lines = [header]
    for r in rows:
        lines.append(
            (
                r["model"],
                r["tier"],
                r["valid_from"],
                r["valid_to"] or "",
                r["origin"] + (" (shadowed)" if "shadowed_by" in r else ""),
                r["input_per_mtok"] or "-",
                r["cached_input_per_mtok"] or "-",
                r["cache_write_per_mtok"] or "-",
                r["output_per_mtok"] or "-",
                _other_prices(r),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1], file=out)
    print(f"\n{len(rows)} rows, USD per 1M tokens; table version {table.version}", file=out)
    for item in table.shadowed():
        if item.fields:
            print(item.describe(), file=out)
    return 0


def _other_prices(r: dict[str, Any]) -> str:
    parts: list[str] = []
    if r["long_context_threshold"]:
        parts.append(f">{r['long_context_threshold']} tok: in {r['long_context_input_per_mtok']}")
        parts.append(f"out {r['long_context_output_per_mtok']}")
    for key, label in (
        ("input_audio_per_mtok", "audio in"),
        ("output_audio_per_mtok", "audio out"),
        ("input_image_per_mtok", "image in"),
        ("output_image_per_mtok", "image out"),
        ("per_1m_characters", "per 1M chars"),
        ("per_minute", "per minute"),
    ):
        if r[key] is not None:
            parts.append(f"{label} {r[key]}")
    if r["per_image"]:
        parts.append("per image " + ", ".join(f"{k} {v}" for k, v in r["per_image"].items()))
    return "; ".join(parts)


def _litellm_default() -> str | None:
    found = sorted(Path(".cache", "litellm").glob("litellm-*.whl"))
    return str(found[-1]) if found else None


def _cmd_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    litellm = args.litellm or _litellm_default()
    if litellm is None:
        print(
            "spendscope pricing check: LiteLLM's price map not found; run `make setup` (it downloads "
            "the pinned litellm wheel into .cache/litellm) or pass --litellm FILE|URL",
            file=sys.stderr,
        )
        return 2
    try:
        from spendscope.pricing.check import check_all

        found = check_all(PriceTable.default(), read_source(litellm), litellm_origin=litellm, at=args.at)
    except ImportError:
        print(
            "spendscope pricing check needs the genai-prices package: pip install 'spendscope[dev]' "
            "(or pip install genai-prices)",
            file=sys.stderr,
        )
        return 2
    except PriceDataError as exc:
        print(f"spendscope pricing check: {exc}", file=sys.stderr)
        return 2
    unreviewed = [d for d in found if d.reviewed is None]
    if args.json:
        json.dump({"rows": [d.as_json() for d in found], "unreviewed": len(unreviewed)}, out, indent=1)
        out.write("\n")
        return 1 if unreviewed else 0
    for d in found:
        state = "reviewed" if d.reviewed is not None else "UNREVIEWED"
        print(
            f"{state:10}  {d.model}  [{d.tier}]  {d.field}: ours={d.ours} {d.source}={d.theirs}  (at {d.at})",
            file=out,
        )
        if d.reviewed is not None:
            print(f"            reason: {d.reviewed}", file=out)
    print(
        f"\n{len(found)} disagreement(s) with genai-prices and LiteLLM, {len(unreviewed)} unreviewed. "
        "Fix the data or add a reviewed entry to spendscope/pricing/data/check_exceptions.toml.",
        file=out,
    )
    return 1 if unreviewed else 0


def _cmd_import(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    at = args.at or datetime.now(UTC)
    today = at.astimezone(UTC).date()
    try:
        table = _load_table(args.config)
        foreign = parse_foreign(read_source(args.source), args.source_format, origin=args.source, today=today)
        report = compare_foreign(table, foreign, today)
        text = render_price_file(report, table, today=today) if args.write else None
    except (OSError, tomllib.TOMLDecodeError, PriceDataError) as exc:
        print(f"spendscope pricing import: {exc}", file=sys.stderr)
        return 2
    if text is not None:
        try:
            tmp = Path(args.write + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(args.write)  # never a half-written price file
        except OSError as exc:
            print(f"spendscope pricing import: cannot write {args.write}: {exc}", file=sys.stderr)
            return 2
    if args.json:
        doc = report.as_json()
        doc["written"] = args.write
        json.dump(doc, out, indent=1)
        out.write("\n")
        return 0
    print(
        f"{report.origin} ({report.format}): {report.models} OpenAI models, the table in force prices "
        f"{len(report.covered)} ({money_str(round(report.coverage * 100, 1))}%) on {report.at}",
        file=out,
    )
    for model in report.lacks:
        tiers = ", ".join(sorted({r.tier for r in model.rows}))
        print(f"lacks       {model.name}  [{tiers}]", file=out)
    for d in report.disagreements:
        also = f" (as {d.matched})" if d.matched else ""
        print(
            f"disagrees   {d.model}{also}  [{d.tier}]  {d.field}: ours={d.ours} theirs={d.theirs}", file=out
        )
    for entry, why in report.ignored:
        print(f"not read    {entry}: {why}", file=out)
    if args.write:
        print(
            f"\nwrote {len(report.lacks)} model(s) to {args.write}; add it to [pricing] extra_tables",
            file=out,
        )
    return 0


def _cmd_reprice(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the collector's answer. :mod:`spendscope.client` is top-level: pricing/ stays pure."""
    out = out or sys.stdout
    code = 0
    try:
        answer = client_from_env(api=args.api).reprice(args.since)
    except ApiError as err:
        print(f"spendscope pricing reprice: {err}", file=sys.stderr)
        if err.status is None:  # no answer (unreachable, bad --api): exit 2 as for any unusable input
            return 2
        answer, code = err.body or {"ok": False, "status": err.status, "error": err.message}, 1
    json.dump(answer, out, indent=1)
    out.write("\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
