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
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PARALLEL_QUEUE = "Pulumi --parallel queue"


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
    makespan: float


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
    return max(finish.values(), default=0.0)


def total_work(tasks: Sequence[Task]) -> float:
    """Every job one after another: an upper bound of any schedule's makespan."""
    return sum(task.work for task in tasks)


@dataclass
class _Running:
    task: Task
    step: int = 0
    step_begin: float = 0.0
    jobs_left: int = 0
    steps: list[StepTiming] = field(default_factory=list)


def simulate(tasks: Sequence[Task], pools: Mapping[str, int], parallel: int | None = None) -> Schedule:
    """When each task is ready, starts and ends. Deterministic: ties go to the earlier task in `tasks`."""
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
    waiting_for_slot: list[tuple[float, int, str]] = []  # (ready time, position, task id), a heap
    # Jobs waiting for pool slots, first come first served within each set of pools they need.
    waiting_jobs: dict[tuple[str, ...], deque[tuple[float, int, str, float]]] = defaultdict(deque)
    events: list[tuple[float, int, str, str]] = []  # (time, seq, "job"|"task-start", task id)
    seq = 0

    def push(time: float, kind: str, task_id: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (time, seq, kind, task_id))

    def make_ready(task_id: str, now: float) -> None:
        ready_at[task_id] = now
        heapq.heappush(waiting_for_slot, (now, position[task_id], task_id))

    def begin_step(state: _Running, now: float) -> None:
        nonlocal seq
        while state.step < len(state.task.steps):
            step = state.task.steps[state.step]
            state.step_begin = now
            state.jobs_left = len(step.seconds)
            if state.jobs_left:
                for seconds in step.seconds:
                    if step.pools:
                        seq += 1
                        waiting_jobs[step.pools].append((now, seq, state.task.id, seconds))
                    else:
                        push(now + seconds, "job", state.task.id)
                return
            state.steps.append(StepTiming(now, now))
            state.step += 1
        finish(state, now)

    def finish(state: _Running, now: float) -> None:
        nonlocal slots
        task_id = state.task.id
        del running[task_id]
        timings[task_id] = TaskTiming(ready_at[task_id], started_at[task_id], now, tuple(state.steps))
        if slots is not None:
            slots += 1
        for dependent in dependents[task_id]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                make_ready(dependent, now)

    def dispatch(now: float) -> None:
        nonlocal slots
        progress = True
        while progress:
            progress = False
            while waiting_for_slot and (slots is None or slots > 0):
                _, _, task_id = heapq.heappop(waiting_for_slot)
                if slots is not None:
                    slots -= 1
                started_at[task_id] = now
                state = _Running(index[task_id])
                running[task_id] = state
                begin_step(state, now)
                progress = True
            # The job that has waited longest among those whose pools all have a free slot, until none fits.
            while True:
                best: tuple[float, int, str, float] | None = None
                best_pools: tuple[str, ...] = ()
                for needed, queue in waiting_jobs.items():
                    fits = all(free[pool] >= units for pool, units in Counter(needed).items())
                    if queue and fits and (best is None or queue[0] < best):
                        best, best_pools = queue[0], needed
                if best is None:
                    break
                waiting_jobs[best_pools].popleft()
                for pool in best_pools:
                    free[pool] -= 1
                push(now + best[3], "job", best[2])

    for task in tasks:
        if remaining[task.id] == 0:
            make_ready(task.id, 0.0)
    now = 0.0
    dispatch(now)
    while events:
        now = events[0][0]
        while events and events[0][0] == now:
            _, _, _, task_id = heapq.heappop(events)
            state = running[task_id]
            step = state.task.steps[state.step]
            for pool in step.pools:
                free[pool] += 1
            state.jobs_left -= 1
            if state.jobs_left == 0:
                state.steps.append(StepTiming(state.step_begin, now))
                state.step += 1
                begin_step(state, now)
        dispatch(now)

    if len(timings) != len(tasks):
        raise ModelError("some tasks never ran")  # cannot happen after check_tasks; kept as a guard
    return Schedule(timings=timings, makespan=max((t.end for t in timings.values()), default=0.0))


def attribution(task: Task, timing: TaskTiming) -> tuple[list[tuple[str, float]], float]:
    """What the time between `ready` and `end` went on (the --parallel queue, then each step's work and
    wait), and how much of it was waiting in a queue."""
    parts = [(PARALLEL_QUEUE, timing.start - timing.ready)]
    waited = timing.start - timing.ready
    for step, step_timing in zip(task.steps, timing.steps, strict=True):
        queued = (step_timing.end - step_timing.begin) - step.service
        parts += [(step.label, step.service), (step.waiting_label, queued)]
        waited += queued
    return [(label, seconds) for label, seconds in parts if seconds > 1e-9], waited


def critical_path(tasks: Sequence[Task], schedule: Schedule) -> list[PathEntry]:
    """The chain of tasks that decides the makespan, first to last.

    From the task that ends last, step back to the dependency that finished last (the one it was waiting
    for), until a task that depended on nothing. Each task's time from ready to end is split into work and
    waits, so the entries' attributions add up to the makespan.
    """
    if not tasks:
        return []
    index = {task.id: task for task in tasks}
    position = {task.id: i for i, task in enumerate(tasks)}
    timings = schedule.timings
    current = max(tasks, key=lambda t: (timings[t.id].end, -position[t.id])).id
    chain: list[PathEntry] = []
    while True:
        task, timing = index[current], timings[current]
        parts, waited = attribution(task, timing)
        chain.append(PathEntry(current, timing.ready, timing.start, timing.end, tuple(parts), waited))
        if not task.deps:
            break
        current = max(task.deps, key=lambda d: (timings[d].end, -position[d]))
    chain.reverse()
    return chain


def waits_on(path: Sequence[PathEntry]) -> dict[str, float]:
    """Seconds along the critical path by what they were spent on, largest first."""
    totals: dict[str, float] = {}
    for entry in path:
        for label, seconds in entry.attribution:
            totals[label] = totals.get(label, 0.0) + seconds
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))
