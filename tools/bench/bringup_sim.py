"""A discrete-event model of Pulumi's engine running a dependency graph: graph in, schedule out.

Pure functions, no Pulumi: `simulate(tasks, pools, parallel)` starts each task once every task it depends
on has finished and a `--parallel` slot is free (Pulumi holds the slot for the whole operation), then runs
its steps one after another. A step is one or more jobs in parallel; a job that needs limited resources
(`pools`, e.g. one ESXi host's 8 provisioning slots and vCenter's) waits, first come first served, until
every one of them has a free slot, and holds them while it runs. `critical_path` walks back from the last
task through the dependency that finished last and says what the time went on, so the attribution adds up
to the makespan exactly.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PARALLEL_QUEUE = "Pulumi --parallel queue"


@dataclass(frozen=True)
class Dial:
    """The step's job is an SSH handshake with `host`, whose sshd drops new connections at random.

    sshd_config(5), MaxStartups start:rate:full: with `start` unauthenticated connections open, a new one is
    refused with probability rate/100, rising linearly to certain refusal at `full`. A refused dial waits
    `delays[k]` and dials again; after `len(delays) + 1` refused dials the task fails."""

    host: str
    start: int
    rate: int
    full: int
    delays: tuple[float, ...]

    def refusal(self, unauthenticated: int) -> float:
        """The probability that sshd refuses a new connection with `unauthenticated` handshakes open."""
        if unauthenticated < self.start:
            return 0.0
        if unauthenticated >= self.full:
            return 1.0
        rate = self.rate / 100
        return rate + (1 - rate) * (unauthenticated - self.start) / (self.full - self.start)


@dataclass(frozen=True)
class Hazard:
    """Each job of the step fails (at its end) with probability `per_extra` for every job of `group` running
    beyond `threshold` when it starts, itself included."""

    group: str
    threshold: int
    per_extra: float
    reason: str

    def probability(self, running: int) -> float:
        return min(1.0, self.per_extra * max(0, running - self.threshold))


@dataclass(frozen=True)
class Deadline:
    """The task fails if its first `steps` steps have not finished `seconds` after it started (a Helm hook
    past the release's timeout: the release fails and rolls back)."""

    steps: int
    seconds: float
    reason: str


@dataclass(frozen=True)
class Failure:
    task: str
    time: float
    reason: str
    step: int = 0
    """The step it failed in."""
    unfinished: int = 0
    """That step's jobs that had not finished (a pull cut off by a deadline: what a retry still has to do)."""
    resumable: bool = False
    """What the finished jobs did stays done (images pulled before a Helm timeout stay on their nodes)."""


@dataclass(frozen=True)
class Step:
    label: str
    """What its running time is attributed to ("template clone", "joins", "image pulls", ...)."""
    seconds: tuple[float, ...]
    """One duration per parallel job; usually one job."""
    pools: tuple[str, ...] = ()
    """Limited resources each job holds a unit of while it runs; a pool named twice is held twice (a full
    clone costs its source and its destination host two units each, four when they are one host)."""
    queue_label: str = ""
    """What waiting for `pools` is attributed to (default: "<first pool> queue")."""
    dial: Dial | None = None
    """An SSH handshake (one job) that sshd may refuse; its retries count as waiting."""
    hazard: Hazard | None = None

    @property
    def service(self) -> float:
        """The step's length when nothing queues."""
        return max(self.seconds, default=0.0)

    @property
    def waiting_label(self) -> str:
        return self.queue_label or (f"{self.pools[0]} queue" if self.pools else "queue")


@dataclass(frozen=True)
class Task:
    id: str
    deps: tuple[str, ...]
    steps: tuple[Step, ...]
    deadline: Deadline | None = None
    background: bool = False
    """Not an engine operation (a node's kubelet pulling images): no --parallel slot, not part of the makespan,
    nothing waits for it; it only shares the pools."""

    @property
    def service(self) -> float:
        return sum(step.service for step in self.steps)

    @property
    def work(self) -> float:
        """Every job's time added up."""
        return sum(sum(step.seconds) for step in self.steps)


@dataclass(frozen=True)
class StepTiming:
    begin: float
    end: float


@dataclass(frozen=True)
class TaskTiming:
    ready: float
    """Everything it depends on has finished."""
    start: float
    """It got a --parallel slot."""
    end: float
    steps: tuple[StepTiming, ...]


@dataclass(frozen=True)
class Schedule:
    timings: dict[str, TaskTiming]
    """The tasks that ran (after a failure, those that had not started never do)."""
    makespan: float
    """When the last engine operation ended (failed or not): the run's end."""
    failures: tuple[Failure, ...] = ()
    """In the order they happened; the first one stopped the run."""

    @property
    def failed(self) -> Failure | None:
        return self.failures[0] if self.failures else None

    def completed(self) -> set[str]:
        """The tasks that ran to the end without failing."""
        failed = {failure.task for failure in self.failures}
        return {task for task in self.timings if task not in failed}


@dataclass(frozen=True)
class PathEntry:
    task: str
    ready: float
    start: float
    end: float
    attribution: tuple[tuple[str, float], ...]
    """(what, seconds) between `ready` and `end`."""
    waited: float
    """Of that, the time spent in queues (--parallel or pools)."""


class ModelError(ValueError):
    pass


def check_tasks(tasks: Sequence[Task], pools: Mapping[str, int]) -> None:
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise ModelError("task ids must be unique")
    known = set(ids)
    for task in tasks:
        missing = [dep for dep in task.deps if dep not in known]
        if missing:
            raise ModelError(f"{task.id} depends on unknown tasks {missing}")
        for step in task.steps:
            if any(seconds < 0 for seconds in step.seconds):
                raise ModelError(f"{task.id}: negative duration")
            unknown = [pool for pool in step.pools if pool not in pools]
            if unknown:
                raise ModelError(f"{task.id}: unknown pools {unknown}")
            too_big = [pool for pool, units in Counter(step.pools).items() if units > pools[pool]]
            if too_big:
                raise ModelError(f"{task.id}: needs more units of {too_big} than the pool has")
    for name, capacity in pools.items():
        if capacity < 1:
            raise ModelError(f"pool {name} needs a capacity of at least 1")
    topological_order(tasks)


def topological_order(tasks: Sequence[Task]) -> list[Task]:
    """Tasks with every dependency before its dependents (stable: input order among equals)."""
    index = {task.id: task for task in tasks}
    remaining = {task.id: len(set(task.deps)) for task in tasks}
    dependents: dict[str, list[str]] = {task.id: [] for task in tasks}
    for task in tasks:
        for dep in set(task.deps):
            dependents[dep].append(task.id)
    position = {task.id: i for i, task in enumerate(tasks)}
    ready = [(position[t.id], t.id) for t in tasks if remaining[t.id] == 0]
    heapq.heapify(ready)
    order: list[Task] = []
    while ready:
        _, task_id = heapq.heappop(ready)
        order.append(index[task_id])
        for dependent in dependents[task_id]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                heapq.heappush(ready, (position[dependent], dependent))
    if len(order) != len(tasks):
        raise ModelError("the dependency graph has a cycle")
    return order


def longest_path(tasks: Sequence[Task]) -> float:
    """The critical-path length with no queueing at all: a lower bound of any schedule's makespan."""
    finish: dict[str, float] = {}
    for task in topological_order(tasks):
        finish[task.id] = max((finish[dep] for dep in task.deps), default=0.0) + task.service
    return max((finish[task.id] for task in tasks if not task.background), default=0.0)


def total_work(tasks: Sequence[Task]) -> float:
    """Every job one after another: an upper bound of any schedule's makespan."""
    return sum(task.work for task in tasks)


@dataclass
class _Running:
    task: Task
    step: int = 0
    step_begin: float = 0.0
    jobs_left: int = 0
    jobs_running: int = 0
    """Jobs of the current step holding their pools (the rest wait in a pool queue)."""
    dials: int = 0
    """Refused dials of the current step."""
    steps: list[StepTiming] = field(default_factory=list)


def simulate(tasks: Sequence[Task], pools: Mapping[str, int], parallel: int | None = None, seed: str = "") -> Schedule:
    """When each task is ready, starts and ends. Deterministic: ties go to the earlier task in `tasks`, and
    every random draw (sshd refusing a dial, a hazard) comes from a generator seeded by `seed` and the task.

    A failure (a dial refused too often, a hazard, a deadline) ends its task at once; like Pulumi's engine,
    the run then starts no new operation, lets the running ones finish, and ends failed."""
    check_tasks(tasks, pools)
    if parallel is not None and parallel < 1:
        raise ModelError("--parallel must be at least 1")
    position = {task.id: i for i, task in enumerate(tasks)}
    index = {task.id: task for task in tasks}
    dependents: dict[str, list[str]] = {task.id: [] for task in tasks}
    remaining: dict[str, int] = {}
    for task in tasks:
        deps = set(task.deps)
        remaining[task.id] = len(deps)
        for dep in deps:
            dependents[dep].append(task.id)

    free = dict(pools)
    slots = parallel
    ready_at: dict[str, float] = {}
    started_at: dict[str, float] = {}
    timings: dict[str, TaskTiming] = {}
    running: dict[str, _Running] = {}
    failures: list[Failure] = []
    handshakes: dict[str, int] = defaultdict(int)  # unauthenticated SSH connections open, by host
    hazard_running: dict[str, int] = defaultdict(int)
    generators: dict[str, random.Random] = {}
    waiting_for_slot: list[tuple[float, int, str]] = []  # (ready time, position, task id), a heap
    # Jobs waiting for pool slots, first come first served within each set of pools they need.
    waiting_jobs: dict[tuple[str, ...], deque[tuple[float, int, str, float]]] = defaultdict(deque)
    # (time, seq, kind, task id, job): "job" ends a job (job: None, or the failure reason it ends with),
    # "dial" tries a refused dial again, "deadline" checks a task's deadline.
    events: list[tuple[float, int, str, str, str | None]] = []
    seq = 0

    units_cache: dict[tuple[str, ...], tuple[tuple[str, int], ...]] = {}

    def units_of(needed: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
        if needed not in units_cache:
            units_cache[needed] = tuple(Counter(needed).items())
        return units_cache[needed]

    def rng(task_id: str) -> random.Random:
        if task_id not in generators:
            generators[task_id] = random.Random(f"{seed}/{task_id}")
        return generators[task_id]

    def push(time: float, kind: str, task_id: str, job: str | None = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (time, seq, kind, task_id, job))

    def make_ready(task_id: str, now: float) -> None:
        ready_at[task_id] = now
        if index[task_id].background:
            start(task_id, now)
        else:
            heapq.heappush(waiting_for_slot, (now, position[task_id], task_id))

    def start(task_id: str, now: float) -> None:
        started_at[task_id] = now
        task = index[task_id]
        state = _Running(task)
        running[task_id] = state
        if task.deadline is not None:
            push(now + task.deadline.seconds, "deadline", task_id)
        begin_step(state, now)

    def start_job(state: _Running, step: Step, seconds: float, now: float) -> None:
        """A job that holds its pools (if any) runs; a hazard decides now whether it will fail."""
        state.jobs_running += 1
        outcome: str | None = None
        if step.hazard is not None:
            hazard_running[step.hazard.group] += 1
            if rng(state.task.id).random() < step.hazard.probability(hazard_running[step.hazard.group]):
                outcome = step.hazard.reason
        push(now + seconds, "job", state.task.id, outcome)

    def dial(state: _Running, step: Step, now: float) -> None:
        assert step.dial is not None
        target = step.dial
        if rng(state.task.id).random() >= target.refusal(handshakes[target.host]):
            handshakes[target.host] += 1
            start_job(state, step, step.seconds[0], now)
            return
        state.dials += 1
        if state.dials > len(target.delays):
            fail(state, now, f"SSH to {target.host}: {state.dials} dials refused by sshd (MaxStartups)")
            return
        push(now + target.delays[state.dials - 1], "dial", state.task.id)

    def begin_step(state: _Running, now: float) -> None:
        nonlocal seq
        while state.step < len(state.task.steps):
            step = state.task.steps[state.step]
            state.step_begin = now
            state.jobs_left = len(step.seconds)
            state.dials = 0
            if state.jobs_left:
                if step.dial is not None:
                    state.jobs_left = 1
                    dial(state, step, now)
                    return
                for seconds in step.seconds:
                    if step.pools:
                        seq += 1
                        waiting_jobs[step.pools].append((now, seq, state.task.id, seconds))
                    else:
                        start_job(state, step, seconds, now)
                return
            state.steps.append(StepTiming(now, now))
            state.step += 1
        finish(state, now)

    def finish(state: _Running, now: float) -> None:
        nonlocal slots
        task_id = state.task.id
        del running[task_id]
        timings[task_id] = TaskTiming(ready_at[task_id], started_at[task_id], now, tuple(state.steps))
        if slots is not None and not state.task.background:
            slots += 1
        if any(failure.task == task_id for failure in failures):
            return
        for dependent in dependents[task_id]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                make_ready(dependent, now)

    def fail(state: _Running, now: float, reason: str, resumable: bool = False) -> None:
        """The task fails now: its jobs let go of their pools, it ends, and nothing after it runs."""
        failures.append(Failure(state.task.id, now, reason, state.step, state.jobs_left, resumable))
        if state.step < len(state.task.steps):
            step = state.task.steps[state.step]
            for pool in step.pools:
                free[pool] += state.jobs_running
            if step.hazard is not None:
                hazard_running[step.hazard.group] -= state.jobs_running
            if step.dial is not None and state.jobs_running:
                handshakes[step.dial.host] -= 1
            for needed in list(waiting_jobs):
                kept = [job for job in waiting_jobs[needed] if job[2] != state.task.id]
                if kept:
                    waiting_jobs[needed] = deque(kept)
                else:
                    del waiting_jobs[needed]
            state.steps.append(StepTiming(state.step_begin, now))
        finish(state, now)

    def dispatch(now: float) -> None:
        nonlocal slots
        progress = True
        while progress:
            progress = False
            while waiting_for_slot and (slots is None or slots > 0) and not failures:
                _, _, task_id = heapq.heappop(waiting_for_slot)
                if slots is not None:
                    slots -= 1
                start(task_id, now)
                progress = True
            # The job that has waited longest among those whose pools all have a free slot, until none fits.
            while waiting_jobs:
                best: tuple[float, int, str, float] | None = None
                best_pools: tuple[str, ...] = ()
                for needed, queue in waiting_jobs.items():
                    if best is not None and queue[0] >= best:
                        continue
                    if all(free[pool] >= units for pool, units in units_of(needed)):
                        best, best_pools = queue[0], needed
                if best is None:
                    break
                queue = waiting_jobs[best_pools]
                queue.popleft()
                if not queue:
                    del waiting_jobs[best_pools]  # only pool sets with waiting jobs are looked at
                for pool in best_pools:
                    free[pool] -= 1
                state = running[best[2]]
                start_job(state, state.task.steps[state.step], best[3], now)

    for task in tasks:
        if remaining[task.id] == 0:
            make_ready(task.id, 0.0)
    now = 0.0
    dispatch(now)
    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, kind, task_id, job = heapq.heappop(events)
            state_or_none = running.get(task_id)
            if state_or_none is None:
                continue  # the task failed meanwhile
            state = state_or_none
            if kind == "deadline":
                deadline = state.task.deadline
                if deadline is not None and state.step < deadline.steps:
                    fail(state, now, deadline.reason, resumable=True)
                continue
            step = state.task.steps[state.step]
            if kind == "dial":
                dial(state, step, now)
                continue
            for pool in step.pools:
                free[pool] += 1
            if step.dial is not None:
                handshakes[step.dial.host] -= 1
            if step.hazard is not None:
                hazard_running[step.hazard.group] -= 1
            state.jobs_running -= 1
            state.jobs_left -= 1
            if job is not None:
                fail(state, now, job)
                continue
            if state.jobs_left == 0:
                state.steps.append(StepTiming(state.step_begin, now))
                state.step += 1
                begin_step(state, now)
        dispatch(now)

    if not failures and len(timings) != len(tasks):
        raise ModelError("some tasks never ran")  # cannot happen after check_tasks; kept as a guard
    operations = [t.end for task_id, t in timings.items() if not index[task_id].background]
    return Schedule(timings=timings, makespan=max(operations, default=0.0), failures=tuple(failures))


def attribution(task: Task, timing: TaskTiming) -> tuple[list[tuple[str, float]], float]:
    """What the time between `ready` and `end` went on (the --parallel queue, then each step's work and
    wait), and how much of it was waiting in a queue."""
    parts = [(PARALLEL_QUEUE, timing.start - timing.ready)]
    waited = timing.start - timing.ready
    # A failed task's last step may be cut short (fewer timings than steps, a step shorter than its work).
    for step, step_timing in zip(task.steps, timing.steps, strict=False):
        elapsed = step_timing.end - step_timing.begin
        work = min(step.service, elapsed)
        queued = elapsed - work
        parts += [(step.label, work), (step.waiting_label, queued)]
        waited += queued
    return [(label, seconds) for label, seconds in parts if seconds > 1e-9], waited


def critical_path(tasks: Sequence[Task], schedule: Schedule) -> list[PathEntry]:
    """The chain of tasks that decides the makespan, first to last.

    From the task that ends last, step back to the dependency that finished last (the one it was waiting
    for), until a task that depended on nothing. Each task's time from ready to end is split into work and
    waits, so the entries' attributions add up to the makespan.
    """
    index = {task.id: task for task in tasks}
    position = {task.id: i for i, task in enumerate(tasks)}
    timings = schedule.timings
    ran = [task for task in tasks if task.id in timings and not task.background]
    if not ran:
        return []
    current = max(ran, key=lambda t: (timings[t.id].end, -position[t.id])).id
    chain: list[PathEntry] = []
    while True:
        task, timing = index[current], timings[current]
        parts, waited = attribution(task, timing)
        chain.append(PathEntry(current, timing.ready, timing.start, timing.end, tuple(parts), waited))
        if not task.deps:
            break
        current = max(task.deps, key=lambda d: (timings[d].end, -position[d]))  # every dependency ran
    chain.reverse()
    return chain


def waits_on(path: Sequence[PathEntry]) -> dict[str, float]:
    """Seconds along the critical path by what they were spent on, largest first."""
    totals: dict[str, float] = {}
    for entry in path:
        for label, seconds in entry.attribution:
            totals[label] = totals.get(label, 0.0) + seconds
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))
