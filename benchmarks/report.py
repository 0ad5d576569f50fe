"""Turn ``results.json`` into the Markdown tables of docs/benchmarks.md and the launch-curve plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXECUTORS = ("ours", "encrypted", "provider")
LABELS = {
    "ours": "ecs_executor",
    "encrypted": "ecs_executor, sealed (workload_kms_key)",
    "provider": "provider AwsEcsExecutor",
}


def _fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return f"{text}{unit}"


def launch_all_seconds(run: dict[str, Any], n: int) -> float | None:
    """When the endpoint had accepted the N-th RunTask (seconds after the tasks were queued)."""
    accepted = run.get("endpoint", {}).get("accepted_times") or []
    return accepted[n - 1] if len(accepted) >= n else None


def event_buffer_all_seconds(run: dict[str, Any], n: int) -> float | None:
    times = run.get("event_buffer_launch_times") or []
    return times[n - 1] if len(times) >= n else None


def cpu_per_launch_ms(run: dict[str, Any], start: str, end: str) -> float | None:
    marks = run.get("phase_marks") or {}
    if start not in marks or end not in marks:
        return None
    launched = marks[end]["launched"] - marks[start]["launched"]
    if launched <= 0:
        return None
    return (marks[end]["cpu_s"] - marks[start]["cpu_s"]) / launched * 1000


def bytes_per_task(run: dict[str, Any]) -> float | None:
    tracked, base = run.get("tracked_rss_bytes"), run.get("baseline_rss_bytes")
    count = run.get("tracked_at_rss")
    if not tracked or not base or not count:
        return None
    return (tracked - base) / count


def tracking_cpu_ms_per_s_per_1000(run: dict[str, Any]) -> float | None:
    """CPU the process spends per second of tracking, per 1,000 tracked (running) tasks."""
    marks = run.get("phase_marks") or {}
    end = marks.get("tracking_done")
    start = marks.get("pending_done") or marks.get("launch_done")
    tracked = run.get("tracked_at_rss")
    if not end or not start or not tracked or end["t"] <= start["t"]:
        return None
    return (end["cpu_s"] - start["cpu_s"]) / (end["t"] - start["t"]) / (tracked / 1000) * 1000


def cpu_per_launch_without_tracking_ms(run: dict[str, Any]) -> float | None:
    """Launch-phase CPU per launch minus what tracking the already launched tasks cost meanwhile
    (tracking cost per task-second taken from the tracking phase)."""
    marks = run.get("phase_marks") or {}
    rate = tracking_cpu_ms_per_s_per_1000(run)
    if rate is None or "launch_done" not in marks:
        return None
    end, launched = marks["launch_done"]["t"], marks["launch_done"]["launched"]
    task_seconds = sum(end - t for t in (run.get("event_buffer_launch_times") or [])[:launched])
    cpu_ms = (marks["launch_done"]["cpu_s"] - marks["start"]["cpu_s"]) * 1000
    return (cpu_ms - rate / 1000 * task_seconds) / launched if launched else None


def _hb_after_first(run: dict[str, Any], phase: str) -> str:
    raw = (run.get("heartbeat_raw_ms") or {}).get(phase) or []
    if len(raw) < 2:
        return "-"
    from benchmarks.worker import percentile

    rest = raw[1:]
    return f"{percentile(rest, 50):,.1f} / {percentile(rest, 99):,.1f} / {max(rest):,.1f} ({len(rest)})"


def _hb(run: dict[str, Any], phase: str | None = None) -> str:
    hb = (run.get("heartbeats") or {}).get(phase) if phase else run.get("heartbeats_all")
    if not hb or not hb.get("count"):
        return "-"
    return f"{hb['p50']:,.1f} / {hb['p99']:,.1f} / {hb['max']:,.1f} ({hb['count']})"


def _lag(values: list[float] | None) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[len(ordered) // 2]:.2f} / {ordered[-1]:.2f} ({len(ordered)})"


def _status(run: dict[str, Any]) -> str:
    if run.get("error"):
        return f"error: {run['error']}"
    if run.get("finished"):
        return "finished"
    return run.get("note") or f"did not finish in {run.get('cap_seconds', 0):.0f} s"


def scenario_rows(meta: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    n, extra = meta["n"], meta.get("extra_pending", 0)
    bound = meta["bound_seconds"]
    rows: list[tuple[str, dict[str, str]]] = []

    def row(label: str, fn: Any) -> None:
        rows.append((label, {e: fn(r) for e, r in runs.items()}))

    row("outcome", _status)
    if extra:
        row(
            f"all {n:,} setup tasks accepted by ECS (s)",
            lambda r: _fmt(launch_all_seconds(r, n)),
        )

        def pending_seconds(r: dict[str, Any]) -> str:
            marks = r.get("phase_marks") or {}
            accepted = r.get("endpoint", {}).get("accepted_times") or []
            if "launch_done" not in marks or len(accepted) < n + extra:
                return "-"
            return _fmt(accepted[n + extra - 1] - marks["launch_done"]["t"])

        row(f"{extra:,} pending tasks: all accepted by ECS after queueing (s)", pending_seconds)
    else:
        row(f"all {n:,} launched: RunTask accepted by ECS (s)", lambda r: _fmt(launch_all_seconds(r, n)))

        def vs_bound(r: dict[str, Any]) -> str:
            t = launch_all_seconds(r, n)
            return "-" if t is None or not bound else f"{t / bound:.2f}x (bound {bound:.1f} s)"

        row("… as a multiple of the throttle bound", vs_bound)
        row(
            f"all {n:,} RUNNING in the event buffer (s)",
            lambda r: _fmt(event_buffer_all_seconds(r, n)),
        )
    row("launched / failed tasks", lambda r: f"{r.get('launched', 0):,} / {r.get('failed', 0):,}")
    row("heartbeat() ms p50 / p99 / max (count), whole run", _hb)
    phases = sorted({p for r in runs.values() for p in (r.get("heartbeats") or {})})
    if len(phases) > 1:
        for phase in ("launch", "pending+tracked", "tracking"):
            if phase in phases:
                row(f"… during {phase}", lambda r, p=phase: _hb(r, p))
                if phase != "tracking":
                    row(
                        f"… during {phase}, after the heartbeat that took the queued tasks",
                        lambda r, p=phase: _hb_after_first(r, p),
                    )

    def waits(r: dict[str, Any]) -> str:
        raw = [w for v in (r.get("heartbeat_wait_raw_ms") or {}).values() for w in v]
        hb = [w for v in (r.get("heartbeat_raw_ms") or {}).values() for w in v]
        if not raw or not hb:
            return "-"
        worst = max(range(len(hb)), key=hb.__getitem__)
        return f"{max(raw):,.1f} / {raw[worst]:,.1f} of {hb[worst]:,.1f}"

    row("heartbeat() time not spent on its own CPU (GIL, I/O), ms: max / in the slowest", waits)

    def first_heartbeats(r: dict[str, Any]) -> str:
        first = r.get("first_heartbeats_ms")
        return " / ".join(f"{v:,.1f}" for v in first) if first else "-"

    row("first heartbeats of the process (warm-up task), ms", first_heartbeats)

    def gc_pauses(r: dict[str, Any]) -> str:
        pauses = r.get("gc_full_pauses")
        if pauses is None:
            return "-"
        return f"{len(pauses)} / {max((p[1] for p in pauses), default=0):,.0f}"

    if any(r.get("gc_full_pauses") is not None for r in runs.values()):
        row("full garbage collections (hold the GIL): count / longest ms", gc_pauses)

    def throttles(r: dict[str, Any]) -> str:
        t = r.get("endpoint", {}).get("throttled") or {}
        return f"{t.get('RunTask', 0):,} / {t.get('DescribeTasks', 0):,}"

    row("ThrottlingException answered: RunTask / DescribeTasks", throttles)

    def calls(r: dict[str, Any]) -> str:
        c = r.get("endpoint", {}).get("calls") or {}
        return f"{c.get('RunTask', 0):,} / {c.get('DescribeTasks', 0):,}"

    row("API calls: RunTask / DescribeTasks", calls)
    if any(r.get("kms_calls") is not None for r in runs.values()):

        def kms(r: dict[str, Any]) -> str:
            calls, launched = r.get("kms_calls"), r.get("launched") or 0
            if calls is None or not launched:
                return "-"
            each = ", ".join(f"{op} {count}" for op, count in sorted(calls.items()))
            return f"{sum(calls.values()) / launched * 1000:,.1f} ({each or 'none'})"

        row("KMS calls per 1,000 launches (all calls of the run)", kms)
    if any(r.get("lag_seconds") for r in runs.values()):
        row("state-change lag to event buffer, s p50 / max (n)", lambda r: _lag(r.get("lag_seconds")))
        row("… engine only (ECS stop → result queued)", lambda r: _lag(r.get("engine_lag_seconds")))
    row("CPU seconds (process, whole run)", lambda r: _fmt(r.get("cpu_seconds"), 2))
    end = "launch_done"
    row("CPU ms per launch (launch phase)", lambda r: _fmt(cpu_per_launch_ms(r, "start", end), 3))
    if extra:
        row("CPU ms per launch (pending phase)", lambda r: _fmt(cpu_per_launch_ms(r, end, "pending_done"), 3))
    else:
        row(
            "… without the tracking done meanwhile (estimate)",
            lambda r: _fmt(cpu_per_launch_without_tracking_ms(r), 3),
        )
    row(
        "tracking CPU, ms per second per 1,000 tracked tasks",
        lambda r: _fmt(tracking_cpu_ms_per_s_per_1000(r), 1),
    )
    row("peak RSS (MB)", lambda r: _fmt((r.get("peak_rss_bytes") or 0) / 2**20 or None, 0))

    def rss_per_task(r: dict[str, Any]) -> str:
        per_task = bytes_per_task(r)
        return "-" if per_task is None else f"{per_task:,.0f} ({r.get('tracked_at_rss'):,} tracked)"

    row("RSS growth per tracked task (bytes)", rss_per_task)
    if any(r.get("traced_bytes") for r in runs.values()):

        def live(r: dict[str, Any]) -> str:
            traced, count = r.get("traced_bytes"), r.get("tracked_at_rss")
            return _fmt(traced / count, 0) if traced and count else "-"

        row("live Python heap per tracked task (tracemalloc, bytes)", live)
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mb']:,} MB; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "Code measured (sha256 prefixes of ecs_executor/*.py): "
        + ", ".join(f"{k} {v}" for k, v in m.get("code_sha256", {}).items()),
        "",
    ]
    if results.get("code_changed_during_run"):
        codes = {r.get("code_sha256") for r in results["runs"].values() if r.get("code_sha256")}
        per_run = ", ".join(f"{k}: {r.get('code_sha256')}" for k, r in results["runs"].items())
        lines += [
            f"**Warning: ecs_executor/*.py changed while the benchmark ran ({len(codes)} versions; "
            f"per run: {per_run}).**",
            "",
        ]
    for name, meta in results["scenarios"].items():
        runs = {e: results["runs"][f"{name}/{e}"] for e in EXECUTORS if f"{name}/{e}" in results["runs"]}
        if not runs:
            continue
        lines.append(f"### {name}: {meta['title']} (N = {meta['n']:,}; {meta['note']})")
        lines.append("")
        header = "| figure | " + " | ".join(LABELS[e] for e in runs) + " |"
        lines += [header, "|---" * (len(runs) + 1) + "|"]
        for label, cells in scenario_rows(meta, runs):
            lines.append(f"| {label} | " + " | ".join(cells[e] for e in runs) + " |")
        lines.append("")
    lines.append(f"Total benchmark time: {results.get('total_seconds', 0):.0f} s")
    return "\n".join(lines) + "\n"


def render_plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, meta) for name, meta in results["scenarios"].items() if meta.get("plot")]
    panels = [(n, m) for n, m in panels if any(f"{n}/{e}" in results["runs"] for e in EXECUTORS)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False)
    colors = {"ours": "tab:blue", "encrypted": "tab:green", "provider": "tab:orange"}
    for ax, (name, meta) in zip(axes[0], panels, strict=True):
        n = meta["n"]
        horizon = 0.0
        for executor in EXECUTORS:
            run = results["runs"].get(f"{name}/{executor}")
            if not run:
                continue
            curves = [
                ((run.get("endpoint") or {}).get("accepted_times"), "-", "RunTask accepted by ECS"),
                (run.get("event_buffer_launch_times"), ":", "RUNNING in event buffer"),
            ]
            for times, style, what in curves:
                times = (times or [])[:n]
                if times:
                    ax.step(
                        [0.0, *times],
                        range(len(times) + 1),
                        where="post",
                        color=colors[executor],
                        linestyle=style,
                        label=f"{LABELS[executor]}: {what}",
                    )
                    horizon = max(horizon, times[-1])
        burst, rate = meta["bound_burst"], meta["bound_rate"]
        bound_end = meta["bound_seconds"]
        horizon = max(horizon, bound_end) * 1.05
        ax.plot(
            [0, 0, bound_end, horizon],
            [0, min(n, burst), n, n],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"throttle bound (burst {burst:g}, then {rate:g}/s)",
        )
        ax.set_title(f"{meta['title']}, N = {n:,}", fontsize=10)
        ax.set_xlabel("seconds since the tasks were queued")
        ax.set_ylabel("tasks launched")
        ax.set_xlim(0, horizon)
        ax.set_ylim(0, n * 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
