"""``spendscope pricing list|check|reprice``: a thin shell over the table, the check and the collector API.

``spendscope/cli.py`` calls :func:`register`; each subcommand sets ``func(args) -> int`` (the exit code).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from datetime import UTC, datetime
from typing import Any, TextIO

from spendscope.client import ApiError, add_api_option, client_from_env
from spendscope.isotime import parse_since
from spendscope.pricing.loading import PriceDataError
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

    p_check = sub.add_parser("check", help="compare the table with genai-prices; exit 1 on unreviewed gaps")
    p_check.add_argument("--json", action="store_true")
    p_check.add_argument("--at", type=_iso_datetime, help="compare the prices in force at this ISO time")
    p_check.set_defaults(func=_cmd_check)

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
    table = PriceTable.default()
    path = config or os.environ.get("SPENDSCOPE_CONFIG")
    if not path:
        return table
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    overrides = doc.get("pricing", {}).get("overrides", [])
    return table.with_overrides(overrides) if overrides else table


def _cmd_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        table = _load_table(args.config)
    except (OSError, tomllib.TOMLDecodeError, PriceDataError) as exc:
        print(f"spendscope pricing list: {exc}", file=sys.stderr)
        return 2
    rows = table.rows(args.at)
    if args.json:
        json.dump({"version": table.version, "rows": rows}, out, indent=1)
        out.write("\n")
        return 0
    header = ("model", "tier", "valid_from", "valid_to", "input", "cached", "cache_write", "output", "other")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r["model"],
                r["tier"],
                r["valid_from"],
                r["valid_to"] or "",
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


def _cmd_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        from spendscope.pricing.check import compare_with_genai_prices

        found = compare_with_genai_prices(PriceTable.default(), args.at)
    except ImportError:
        print(
            "spendscope pricing check needs the genai-prices package: pip install 'spendscope[dev]' "
            "(or pip install genai-prices)",
            file=sys.stderr,
        )
        return 2
    unreviewed = [d for d in found if d.reviewed is None]
    if args.json:
        json.dump({"rows": [d.as_json() for d in found], "unreviewed": len(unreviewed)}, out, indent=1)
        out.write("\n")
        return 1 if unreviewed else 0
    for d in found:
        state = "reviewed" if d.reviewed is not None else "UNREVIEWED"
        print(
            f"{state:10}  {d.model}  [{d.tier}]  {d.field}: ours={d.ours} "
            f"genai-prices={d.theirs}  (at {d.at})",
            file=out,
        )
        if d.reviewed is not None:
            print(f"            reason: {d.reviewed}", file=out)
    print(
        f"\n{len(found)} disagreement(s) with genai-prices, {len(unreviewed)} unreviewed. "
        "Fix the data or add a reviewed entry to spendscope/pricing/data/check_exceptions.toml.",
        file=out,
    )
    return 1 if unreviewed else 0


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
