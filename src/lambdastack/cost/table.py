"""The cost report as a terminal table."""

from __future__ import annotations

from typing import Any

_HEADERS = ("FUNCTION", "VERSION", "ARCH", "MEMORY", "REQUESTS", "GB-S", "TMP GB-S", "PC GB-S", "COST (USD)")


def _money(value: float) -> str:
    return f"${value:.6f}"


def render(report: dict[str, Any]) -> str:
    rows = [
        (
            f["functionName"], f["version"], f["architecture"], f"{f['memorySizeMB']} MB", f"{f['requests']:,}",
            f"{f['gbSeconds']:.3f}", f"{f['ephemeralStorageGbSeconds']:.3f}",
            f"{f['provisionedConcurrency']['gbSeconds']:.3f}", _money(f["cost"]["total"]),
        )
        for f in report["functions"]
    ]
    total = report["total"]
    rows.append(("TOTAL", "", "", "", f"{total['requests']:,}", f"{total['gbSeconds']:.3f}",
                 f"{total['ephemeralStorageGbSeconds']:.3f}", f"{total['provisionedConcurrencyGbSeconds']:.3f}",
                 _money(total["cost"]["total"])))
    widths = [max(len(str(r[i])) for r in (_HEADERS, *rows)) for i in range(len(_HEADERS))]
    numeric = {4, 5, 6, 7, 8}

    def fmt(row: tuple[str, ...]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in cells).rstrip()

    out = [f"Usage from {report['since']} to {report['until']}, priced at AWS Lambda's published prices "
           f"of {report['prices']['date']} ({report['prices']['source']})"]
    priced_as = [v for v in (report["pricedAs"]["architecture"], report["pricedAs"]["region"]) if v]
    if priced_as:
        out.append(f"Priced as if every function ran as {' in '.join(priced_as)}")
    out.append("")
    if not report["functions"]:
        return "\n".join([*out, "No invocations in this period."]) + "\n"
    out += [fmt(_HEADERS), *(fmt(r) for r in rows[:-1]), fmt(tuple("-" * w for w in widths)), fmt(rows[-1])]
    free, bill = report["freeTier"], report["bill"]
    out += [
        "",
        f"Bill before the free tier   {_money(bill['beforeFreeTier'])}",
        f"Free tier (a month: {free['requestsPerMonth']:,} requests, {free['gbSecondsPerMonth']:,} GB-s): "
        f"{free['requestsCovered']:,} requests and {free['gbSecondsCovered']:.3f} GB-s covered, "
        f"-{_money(free['credit'])}",
        f"Bill                        {_money(bill['total'])}",
    ]
    out += [f"Note: {note}" for note in report["notes"]]
    return "\n".join(out) + "\n"
