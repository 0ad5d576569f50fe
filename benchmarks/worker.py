"""One benchmark run of one executor, in its own process: ``python -m benchmarks.worker SPEC.json``.

The process holds nothing but Airflow, the executor under test and a scheduler-like driver, so its CPU
time and RSS are the executor's. It drives the executor exactly as Airflow's scheduler loop does
(``queue_workload`` for every task, then ``heartbeat()`` once a second and ``get_event_buffer()``), in
phases:

* ``launch``: N tasks queued at once, heartbeats until every task is reported RUNNING (or failed);
* ``pending`` (optional): more tasks queued while the first N are tracked;
* ``tracking``: heartbeats with every task running; a few tasks are made to exit at the endpoint and the
  time until their state reaches the event buffer is recorded (state-change lag).

Each heartbeat appends a line to the progress file, so a run that the orchestrator has to kill at its
wall-time cap still leaves its figures behind. The result is written as JSON to ``result_path``.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import gc
import json
import logging
import os
import queue
import resource
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

REGION = "us-east-1"
CONN_ID = "aws_bench"
WARMUP_DAG = "bench_warmup"


def _setup_environment(spec: dict[str, Any]) -> None:
    """Airflow reads its home and config at import time: everything is set before the first import."""
    for name in [k for k in os.environ if k.startswith(("AIRFLOW__AWS_ECS_EXECUTOR__", "AWS_"))]:
        del os.environ[name]
    os.environ.update(
        AIRFLOW_HOME=tempfile.mkdtemp(prefix="ecs-bench-airflow-"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW__API_AUTH__JWT_SECRET="benchmark-jwt-secret-0123456789abcdef0123456789",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL_ECS=spec["url"],
        AIRFLOW_CONN_AWS_BENCH=json.dumps({"conn_type": "aws", "extra": _connection_extra(spec)}),
    )
    options = {"conn_id": CONN_ID, "region_name": REGION, **spec["options"]}
    for key, value in options.items():
        os.environ[f"AIRFLOW__AWS_ECS_EXECUTOR__{key.upper()}"] = str(value)


def _connection_extra(spec: dict[str, Any]) -> dict[str, Any]:
    """The local ECS endpoint for every service; events mode's SQS (``sqs_url``) and the encrypted runs'
    KMS (``kms_url``) at their own servers."""
    extra: dict[str, Any] = {"endpoint_url": spec["url"], "region_name": REGION}
    services = {"sqs": spec.get("sqs_url"), "kms": spec.get("kms_url")}
    if any(services.values()):
        extra["service_config"] = {name: {"endpoint_url": url} for name, url in services.items() if url}
    return extra


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settled_rss() -> int:
    """RSS after a full collection and after glibc hands freed heap pages back to the OS."""
    gc.collect()
    with contextlib.suppress(OSError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_bytes()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu_seconds(native_id: int | None) -> float | None:
    """user+system CPU of one thread of this process (10 ms resolution)."""
    if native_id is None:
        return None
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarize_ms(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else None,
        "mean": sum(ms) / len(ms) if ms else None,
    }


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class _ErrorLog(logging.Handler):
    """Counts ERROR log records and keeps a few distinct messages (why tasks failed)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.samples) < 5:
            try:
                text = record.getMessage()
            except Exception:  # pragma: no cover
                text = str(record.msg)
            text = text[:400]
            if text not in self.samples:
                self.samples.append(text)


class _StampedResults(queue.SimpleQueue):  # type: ignore[type-arg]
    """Our engine's queue of finals, timestamping terminal state changes of the lag-sample tasks.

    Lets the report separate the engine's own lag (ECS stop -> result queued) from the wait for the
    scheduler's next heartbeat. Benchmark-side instrumentation only; the engine is unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.watch: set[Any] = set()
        self.stamps: dict[Any, float] = {}

    def put(self, sequenced: Any, block: bool = True, timeout: float | None = None) -> None:
        item = sequenced[1]
        key = getattr(item, "key", None)
        # Final states only: a RUNNING notice (events mode's first reconcile) is not the task's end.
        if (
            key in self.watch
            and key not in self.stamps
            and type(item).__name__ == "StateChanged"
            and item.status.phase.is_terminal
        ):
            self.stamps[key] = time.monotonic()
        super().put(sequenced, block, timeout)


class _CountedNotices(queue.SimpleQueue):  # type: ignore[type-arg]
    """Our engine's queue of notices (RUNNING, Launched, Relaunching), counting what was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def put(self, sequenced: Any, block: bool = True, timeout: float | None = None) -> None:
        self.sent += 1
        super().put(sequenced, block, timeout)


class _GcPauses:
    """Full (generation 2) garbage collections: when, how long, on which thread. A collection holds the
    GIL throughout, so one on the engine thread stalls the scheduler thread for as long."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, str]] = []
        self._started = 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            import threading

            elapsed = time.perf_counter() - self._started
            self.pauses.append((time.monotonic(), elapsed, threading.current_thread().name))


class Run:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.url: str = spec["url"]
        self.kind: str = spec["executor"]
        self.n: int = spec["n"]
        self.extra: int = spec.get("extra_pending", 0)
        self.total = self.n + self.extra
        self.interval: float = spec.get("heartbeat_interval", 1.0)
        self.deadline = time.monotonic() + spec["cap_seconds"]
        self.progress = open(spec["progress_path"], "a", buffering=1)  # noqa: SIM115 - closed at exit
        self.errors = _ErrorLog()
        self.gc_pauses = _GcPauses()
        logging.getLogger().addHandler(self.errors)
        # Driver bookkeeping is preallocated before the memory baseline so it is not billed to the
        # executor: one double per task for "first RUNNING seen" and for "terminal state seen".
        nan = float("nan")
        self.launched_at = array.array("d", [nan]) * self.total
        self.ended_at = array.array("d", [nan]) * self.total
        self.failed = array.array("b", [0]) * self.total
        self.launched = 0
        self.failed_count = 0
        self.succeeded = 0
        self.sample_every = max(1, self.n // max(1, spec.get("lag_samples", 0) or 1))
        self.sample_arns: dict[int, str] = {}
        self.heartbeats: dict[str, list[float]] = {}
        self.warmup_heartbeats: list[float] = []
        self.heartbeat_waits: dict[str, list[float]] = {}
        self.phase = "start"
        self.phase_marks: dict[str, dict[str, Any]] = {}
        self.t0 = 0.0
        self.executor: Any = None
        self.stamped: _StampedResults | None = None
        self.notices: _CountedNotices | None = None
        self.engine_tid: int | None = None

    # ---- setup ------------------------------------------------------------------------------------

    def build_executor(self) -> None:
        parallelism = self.total + 100
        if self.kind in ("ours", "encrypted"):
            from ecs_executor import EcsExecutor

            self.executor = EcsExecutor(parallelism=parallelism)
            self.stamped = _StampedResults()
            self.notices = _CountedNotices()
            self.executor._channel.finals = self.stamped
            self.executor._channel.notices = self.notices
        else:
            from airflow.providers.amazon.aws.executors.ecs.ecs_executor import AwsEcsExecutor

            self.executor = AwsEcsExecutor(parallelism=parallelism)
        started = time.perf_counter()
        self.executor.start()
        self.startup_seconds = time.perf_counter() - started
        engine = getattr(self.executor, "_engine", None)
        self.engine_tid = engine._thread.native_id if engine is not None else None

    def index_of(self, key: Any) -> int:
        return int(str(key.task_id)[1:]) if key.dag_id != WARMUP_DAG else -1

    def warm_up(self) -> None:
        """One task through the whole path before the baseline, so lazily loaded code, botocore shapes
        and connection pools are not billed to the tracked tasks."""
        from benchmarks.workloads import make_workload

        self.executor.queue_workload(make_workload("w0", dag_id=WARMUP_DAG), session=None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            started = time.perf_counter()
            self.executor.heartbeat()
            # The first heartbeats of a fresh process pay for whatever is set up lazily (issue 12, #14).
            self.warmup_heartbeats.append(time.perf_counter() - started)
            events = self.executor.get_event_buffer()
            if any(str(getattr(state, "value", state)) == "running" for state, _ in events.values()):
                return
            time.sleep(0.2)

    # ---- driving ----------------------------------------------------------------------------------

    def queue(self, start: int, count: int) -> None:
        from benchmarks.workloads import make_workload

        for i in range(start, start + count):
            self.executor.queue_workload(make_workload(f"t{i}"), session=None)

    def beat(self) -> None:
        cpu_started = time.thread_time()
        started = time.perf_counter()
        self.executor.heartbeat()
        elapsed = time.perf_counter() - started
        cpu = time.thread_time() - cpu_started
        now = time.monotonic()
        self.heartbeats.setdefault(self.phase, []).append(elapsed)
        # Wall time minus the scheduler thread's own CPU: mostly waiting for the GIL (or I/O).
        self.heartbeat_waits.setdefault(self.phase, []).append(max(0.0, elapsed - cpu))
        for key, (state, info) in self.executor.get_event_buffer().items():
            i = self.index_of(key)
            if i < 0:
                continue
            state = str(getattr(state, "value", state))
            if state == "running":
                if self.launched_at[i] != self.launched_at[i]:  # NaN: first time
                    self.launched_at[i] = now - self.t0
                    self.launched += 1
                    if i % self.sample_every == 0 and i < self.n and info:
                        self.sample_arns[i] = str(info)
            elif state in ("success", "failed"):
                if self.ended_at[i] == self.ended_at[i]:
                    continue
                self.ended_at[i] = now - self.t0
                if state == "failed":
                    self.failed[i] = 1
                    self.failed_count += 1
                else:
                    self.succeeded += 1
        self.progress.write(
            json.dumps(
                {
                    "phase": self.phase,
                    "t": round(now - self.t0, 4),
                    "hb_ms": round(elapsed * 1000, 3),
                    "launched": self.launched,
                    "failed": self.failed_count,
                    "cpu_s": round(cpu_seconds(), 3),
                    "rss_mb": round(rss_bytes() / 2**20, 1),
                }
            )
            + "\n"
        )

    def beat_until(self, done: Any, between: Any = None) -> bool:
        """Heartbeat once a second (at once when a heartbeat overran) until ``done()`` or the cap.

        ``between()`` runs at least every 50 ms between heartbeats, and after every heartbeat (the
        provider's heartbeats can be longer than the interval).
        """
        next_beat = time.monotonic()
        while True:
            if between is not None:
                between()
            now = time.monotonic()
            if now >= self.deadline:
                return False
            if now < next_beat:
                time.sleep(max(0.0, min(next_beat, self.deadline, now + 0.05) - now))
                continue
            next_beat = now + self.interval
            self.beat()
            if done():
                return True

    def mark(self, name: str, **extra: Any) -> None:
        self.phase_marks[name] = {
            "t": time.monotonic() - self.t0,
            "cpu_s": cpu_seconds(),
            "main_thread_cpu_s": time.thread_time(),
            "engine_thread_cpu_s": thread_cpu_seconds(self.engine_tid),
            "launched": self.launched,
            "failed": self.failed_count,
            "engine_counters": dict(getattr(getattr(self.executor, "_engine", None), "counters", {})),
            "notices_sent": self.notices.sent if self.notices is not None else None,
            **extra,
        }

    # ---- phases -----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.build_executor()
        self.warm_up()
        self.baseline_rss = settled_rss()
        # Several workers sharing one endpoint (benchmarks/shared_budget.py) start launching together.
        start_at = self.spec.get("start_at_epoch")
        if start_at is not None:
            time.sleep(max(0.0, start_at - time.time()))
        if self.spec.get("tracemalloc"):
            tracemalloc.start(1)
        self.t0 = time.monotonic()
        self.mark("start")
        self.phase = "launch"
        self.queue(0, self.n)
        finished = self.beat_until(lambda: self.launched + self.failed_count >= self.n)
        self.mark("launch_done", finished=finished)
        if finished and self.spec.get("track_latency_ms") is not None:
            post_json(f"{self.url}/_local_ecs/config", {"latency_ms": self.spec["track_latency_ms"]})
        if finished and self.spec.get("track_knobs"):
            post_json(f"{self.url}/_local_ecs/config", self.spec["track_knobs"])
        if finished and self.extra:
            self.phase = "pending+tracked"
            self.queue(self.n, self.extra)
            finished = self.beat_until(lambda: self.launched + self.failed_count >= self.total)
            self.mark("pending_done", finished=finished)
        if finished and self.spec.get("track_seconds"):
            self.phase = "tracking"
            finished = self.track()
            self.mark("tracking_done", finished=finished)
        self.tracked_rss = settled_rss()
        if tracemalloc.is_tracing():
            self.traced_bytes = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        return self.result(finished)

    def track(self) -> bool:
        """Heartbeats with everything running; lag samples are made to exit one by one."""
        samples = sorted(self.sample_arns)[: self.spec.get("lag_samples", 0)]
        if self.stamped is not None:
            self.stamped.watch = {self._key_for(i) for i in samples}
        track_seconds = self.spec["track_seconds"]
        start = time.monotonic()
        # Spread the stops over the tracking window so they land at every phase of the poll cycle.
        gap = (track_seconds * 0.7) / max(1, len(samples))
        plan = [(start + 1.0 + k * gap + (k * 0.37) % 1.0, i) for k, i in enumerate(samples)]
        self.stopped_at: dict[int, float] = {}

        def between() -> None:
            now = time.monotonic()
            while plan and plan[0][0] <= now:
                _, i = plan.pop(0)
                before = time.monotonic()
                post_json(f"{self.url}/_local_ecs/finish", {"task": self.sample_arns[i], "exitCode": 0})
                self.stopped_at[i] = before - self.t0

        def done() -> bool:
            if time.monotonic() - start < track_seconds:
                return False
            return not plan and all(self.ended_at[i] == self.ended_at[i] for i in self.stopped_at)

        if self.spec.get("notice_burst"):
            self.burst_notices()
        self.deadline = min(self.deadline, start + track_seconds + 30)
        return self.beat_until(done, between)

    def burst_notices(self) -> None:
        """A RUNNING notice for every tracked task, queued at once, as a reconcile, an adoption or a
        restarted engine sends them: what the samples' ends must not wait behind. Put on the executor's own
        channel from the driver thread, between heartbeats."""
        from ecs_executor import messages as m
        from ecs_executor.core.task_status import Phase, TaskStatus

        channel = self.executor._channel
        put = (
            getattr(channel, "put_result", None) or channel.results.put
        )  # the code before issue 22: one queue
        status = TaskStatus(Phase.RUNNING, "benchmark burst")
        arns = list(self.executor._arns.items())
        for key, arn in arns:
            put(m.StateChanged(key, arn, status))
        self.burst_size = len(arns)

    def _key_for(self, i: int) -> Any:
        from benchmarks.workloads import make_workload

        return make_workload(f"t{i}").ti.key

    # ---- result -----------------------------------------------------------------------------------

    def result(self, finished: bool) -> dict[str, Any]:
        end = time.monotonic() - self.t0
        lags, engine_lags = [], []
        for i, stopped in getattr(self, "stopped_at", {}).items():
            if self.ended_at[i] == self.ended_at[i]:
                lags.append(self.ended_at[i] - stopped)
            if self.stamped is not None:
                stamp = self.stamped.stamps.get(self._key_for(i))
                if stamp is not None:
                    engine_lags.append(stamp - self.t0 - stopped)
        launch_times = sorted(t for t in self.launched_at if t == t)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        engine = getattr(self.executor, "_engine", None)
        still_tracked = self.total - self.failed_count - self.succeeded
        return {
            "executor": self.kind,
            "finished": finished,
            "n": self.n,
            "extra_pending": self.extra,
            "t0_monotonic": self.t0,
            "wall_seconds": end,
            "startup_seconds": self.startup_seconds,
            "first_heartbeats_ms": [round(x * 1000, 3) for x in self.warmup_heartbeats[:3]],
            "launched": self.launched,
            "failed": self.failed_count,
            "succeeded": self.succeeded,
            "event_buffer_launch_times": [round(t, 4) for t in launch_times],
            "heartbeats": {phase: summarize_ms(v) for phase, v in self.heartbeats.items()},
            "heartbeats_all": summarize_ms([s for v in self.heartbeats.values() for s in v]),
            "heartbeat_raw_ms": {p: [round(s * 1000, 3) for s in v] for p, v in self.heartbeats.items()},
            "heartbeat_wait_raw_ms": {
                p: [round(s * 1000, 3) for s in v] for p, v in self.heartbeat_waits.items()
            },
            "phase_marks": self.phase_marks,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "main_thread_cpu_seconds": time.thread_time(),
            "engine_thread_cpu_seconds": thread_cpu_seconds(self.engine_tid),
            "peak_rss_bytes": usage.ru_maxrss * 1024,
            "baseline_rss_bytes": self.baseline_rss,
            "tracked_rss_bytes": getattr(self, "tracked_rss", None),
            "tracked_at_rss": still_tracked,
            "traced_bytes": getattr(self, "traced_bytes", None),
            "lag_seconds": sorted(lags),
            "engine_lag_seconds": sorted(engine_lags),
            "lag_samples_stopped": len(getattr(self, "stopped_at", {})),
            "notice_burst": getattr(self, "burst_size", None),
            "error_log_count": self.errors.count,
            "error_log_samples": self.errors.samples,
            "engine_counters": dict(engine.counters) if engine is not None else None,
            # Full collections during the measured phases (settled_rss() forces two more at the end).
            "gc_full_pauses": [
                (round(t - self.t0, 3), round(d * 1000, 1), thread)
                for t, d, thread in self.gc_pauses.pauses
                if t >= self.t0
            ][:-1],
        }


def code_hash() -> str:
    """One sha256 prefix over the product's modules (dev tools left out) as this process imports them."""
    import hashlib

    package = Path(__file__).resolve().parent.parent / "ecs_executor"
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if rel.parts[0] not in ("local_ecs", "demo"):
            digest.update(str(rel).encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    code = code_hash()
    _setup_environment(spec)
    run = Run(spec)
    try:
        result = run.run()
    except BaseException as exc:
        result = {"executor": spec["executor"], "error": f"{type(exc).__name__}: {exc}", "finished": False}
        logging.getLogger(__name__).exception("benchmark run failed")
    result["code_sha256"] = code
    tmp = Path(spec["result_path"] + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(spec["result_path"])
    sys.stdout.flush()
    sys.stderr.flush()
    # Neither executor is shut down: the provider's end() waits for every task to finish, and the
    # tasks run for an hour. The endpoint is discarded with the run.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
