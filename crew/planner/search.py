"""Branch and bound for solver.py: depth-first over agents, with bounds, symmetry and a memo.

Why it is fast enough on fleets (64 agents x 32 GPUs in well under a second):
- Symmetry. GPUs of one class (same usable bytes, not part of a split group) holding the same content are
  interchangeable, so at each node only the first of them is tried. Agents with equal requests form a
  class; states reached by placing them in another order are recognised by the memo.
- Memo. A state (next agent, counters, multiset of device contents) seen before cannot lead anywhere
  better than the first time, because the incumbent only improves.
- Bounds, lexicographic and conditional: an agent whose options no longer fit anywhere is a certain
  fallback; each class at least costs its best fitting rank; the remaining GPU agents add at least the
  pairs of spreading them evenly (water filling); the smallest headroom can only shrink, and is at most
  the average once every remaining agent's own KV cache is in.
- Tightening. Once the first four levels of a node's bound equal the incumbent's, only a strictly larger
  smallest headroom can win, so every GPU's capacity is cut to usable - (incumbent headroom + 1) below
  that node: options that would eat into the margin are not even tried.
"""

from __future__ import annotations

import heapq

from crew.planner.problem import ModelCost, Option, Problem, share_bytes

Key = tuple[int, int, int, int, int]
Sig = tuple[object, ...]
Undo = tuple[int, "list[int] | None", int, int]  # device, its instance entry, load, signature


class Search:
    def __init__(self, problem: Problem, opts: tuple[tuple[Option, ...], ...]) -> None:
        self.p, self.opts = problem, opts
        devs = problem.devices
        self.usable = [d.usable_bytes for d in devs]
        self.is_gpu = [not d.is_cpu for d in devs]
        self.gpus = [d for d, dev in enumerate(devs) if not dev.is_cpu]
        split_devs = {d for os in opts for o in os if o.placement == "split" for d in o.devices}
        # a device inside some split group is unique: swapping it with a twin would change the groups
        self.dev_class: list[object] = [
            (dev.usable_bytes, dev.is_cpu, d if d in split_devs else -1) for d, dev in enumerate(devs)
        ]
        classes: dict[object, int] = {}
        self.agent_class = [
            classes.setdefault((r.candidates, r.cpu, r.api, r.priority), len(classes)) for r in problem.requests
        ]
        self.weight = [r.priority for r in problem.requests]
        self.rep = [self.agent_class.index(c) for c in range(len(classes))]
        self.remaining = [self.agent_class.count(c) for c in range(len(classes))]
        self.order = sorted(
            range(len(opts)), key=lambda i: (-_difficulty(problem, i), self.agent_class[i], i)
        )
        # per class and rank: the devices a single-GPU option exists for; the split options
        self.singles = [
            [
                {o.devices[0] for o in opts[r] if o.placement == "gpu" and o.rank == k}
                for k in range(len(problem.requests[r].candidates))
            ]
            for r in self.rep
        ]
        self.splits = [[o for o in opts[r] if o.placement == "split"] for r in self.rep]
        self.kv_floor = [
            min(
                (o.cost.kv_cache_bytes for o in opts[r] if o.cost and o.placement in ("gpu", "split")),
                default=0,
            )
            for r in self.rep
        ]
        self.inst: list[dict[tuple[str, tuple[int, ...]], list[int]]] = [{} for _ in devs]
        self.load, self.count = [0] * len(devs), [0] * len(devs)
        self.on: list[list[int]] = [[] for _ in devs]
        # a device's content as an interned int: cheap to hash, compare and sort in the hot loops
        self.sig_ids: dict[Sig, int] = {}
        self.sig: list[int] = [self._intern((c, ())) for c in self.dev_class]
        self.unplaced = self.fallbacks = self.rank_sum = self.pairs = 0
        self.path: list[Option | None] = [None] * len(opts)
        self.best: tuple[Option, ...] | None = None
        self.best_key: Key | None = None
        self.memo: set[tuple[object, ...]] = set()
        self.fit_memo: dict[tuple[object, ...], bool] = {}
        self.nodes, self.aborted, self.proven = 0, False, 0
        self.limit = max(problem.node_limit, len(opts) + 1)  # the first dive always completes

    def run(self) -> tuple[Option, ...]:
        root = self._bound(self.usable)
        self._dfs(0)
        assert self.best is not None and self.best_key is not None
        # levels that meet the root's lower bound are optimal even when the budget ran out
        self.proven = 5 if not self.aborted else next((j for j in range(5) if self.best_key[j] != root[j]), 5)
        return self.best

    # ------------------------------------------------------------------------------ loads

    def _share(self, n: int, d: int, group: tuple[int, ...]) -> int:
        return share_bytes(n, d, group, self.p)  # the solver's rule, so the search and `evaluate` agree

    def _new_load(self, d: int, key: tuple[str, tuple[int, ...]], c: ModelCost) -> int:
        e, g = self.inst[d].get(key), key[1]
        # each model instance is a server process of its own, with its own runtime (CUDA context) overhead
        if e is None:
            old, new = (
                0,
                self._share(c.weights_bytes, d, g) + self._share(c.kv_cache_bytes, d, g) + c.compute_bytes
                + c.overhead_bytes,
            )
        else:
            old = self._share(e[0], d, g) + self._share(e[1], d, g) + e[2] + e[3]
            new = (
                self._share(e[0], d, g)
                + self._share(e[1] + c.kv_cache_bytes, d, g)
                + max(e[2], c.compute_bytes)
                + max(e[3], c.overhead_bytes)
            )
        return self.load[d] - old + new

    def _intern(self, sig: Sig) -> int:
        return self.sig_ids.setdefault(sig, len(self.sig_ids))

    def _fits_single(self, d: int, c: ModelCost, cap: int) -> bool:
        """Whether `c` fits device d alone, memoised: the answer depends only on the device's content.
        Costs are keyed by identity (they live as long as the problem): hashing the dataclass is slow."""
        key = (self.sig[d], id(c), cap)
        hit = self.fit_memo.get(key)
        if hit is None:
            hit = self.fit_memo[key] = self._new_load(d, (c.model, (d,)), c) <= cap
        return hit

    def _fits(self, o: Option, caps: list[int]) -> bool:
        if o.cost is None:
            return True
        if len(o.devices) == 1 and self.is_gpu[o.devices[0]]:
            return self._fits_single(o.devices[0], o.cost, caps[o.devices[0]])
        key = (o.cost.model, o.devices)
        return all(self._new_load(d, key, o.cost) <= caps[d] for d in o.devices)

    def _apply(self, i: int, o: Option) -> list[Undo]:
        undo: list[Undo] = []
        if o.cost is not None:
            c, key = o.cost, (o.cost.model, o.devices)
            self.pairs += len({a for d in o.devices if self.is_gpu[d] for a in self.on[d]})
            for d in o.devices:
                e = self.inst[d].get(key)
                undo.append((d, None if e is None else list(e), self.load[d], self.sig[d]))
                new_load = self._new_load(d, key, c)
                if e is None:
                    self.inst[d][key] = [
                        c.weights_bytes,
                        c.kv_cache_bytes,
                        c.compute_bytes,
                        c.overhead_bytes,
                        1,
                    ]
                else:
                    e[1] += c.kv_cache_bytes
                    e[2], e[3], e[4] = max(e[2], c.compute_bytes), max(e[3], c.overhead_bytes), e[4] + 1
                self.load[d] = new_load  # overhead is per model instance now: nothing per device to track
                self.count[d] += 1
                self.on[d].append(i)
                content = tuple(sorted((m, g, e[1], e[2], e[3], e[4]) for (m, g), e in self.inst[d].items()))
                self.sig[d] = self._intern((self.dev_class[d], content))
        self._count(i, o, +1)
        self.path[i] = o
        self.remaining[self.agent_class[i]] -= 1
        return undo

    def _undo(self, i: int, o: Option, undo: list[Undo]) -> None:
        self.remaining[self.agent_class[i]] += 1
        self.path[i] = None
        self._count(i, o, -1)
        for d, e, load, sig in reversed(undo):
            assert o.cost is not None
            key = (o.cost.model, o.devices)
            if e is None:
                del self.inst[d][key]
            else:
                self.inst[d][key] = e
            self.load[d], self.sig[d] = load, sig
            self.count[d] -= 1
            self.on[d].pop()
        if o.cost is not None:
            self.pairs -= len({a for d in o.devices if self.is_gpu[d] for a in self.on[d]})

    def _count(self, i: int, o: Option, sign: int) -> None:
        self.unplaced += sign * (o.placement == "none")
        self.fallbacks += sign * (o.placement in ("cpu", "api"))
        self.rank_sum += sign * o.rank * self.weight[i]

    # ------------------------------------------------------------------------------ search

    def _dfs(self, k: int) -> None:
        self.nodes += 1
        if self.nodes > self.limit:
            self.aborted = True
            return
        if k == len(self.order):
            self._leaf()
            return
        state = (k, self.unplaced, self.fallbacks, self.rank_sum, self.pairs, tuple(sorted(self.sig)))
        if state in self.memo:
            return
        self.memo.add(state)
        caps = self.usable
        best = self.best_key
        if best is not None:
            lb = self._bound(caps)
            if lb >= best:
                return
            if lb[:4] == best[:4]:  # only a larger smallest headroom can still win: tighten
                margin = -best[4] + 1
                caps = [u - margin if g else u for u, g in zip(self.usable, self.is_gpu, strict=True)]
                if self._bound(caps) >= best:
                    return
        i = self.order[k]
        for o in self._ordered(i, caps):
            undo = self._apply(i, o)
            self._dfs(k + 1)
            self._undo(i, o, undo)
            if self.aborted:
                return

    def _leaf(self) -> None:
        h = min((self.usable[d] - self.load[d] for d in self.gpus), default=0)
        key = (self.unplaced, self.fallbacks, self.rank_sum, self.pairs, -h)
        if self.best_key is None or key < self.best_key:
            self.best_key = key
            self.best = tuple(o for o in self.path if o is not None)

    def _ordered(self, i: int, caps: list[int]) -> list[Option]:
        """Fitting options, one per class of equivalent devices: best rank, emptiest GPU, then the tightest
        fit (best fit keeps roomy GPUs for the agents that need them; on a 64-agent fleet the first dive
        then already reaches the fewest shared pairs, where worst fit needed 12% more)."""
        scored: list[tuple[tuple[int, int, int, int], Option]] = []
        seen: set[tuple[object, ...]] = set()
        for idx, o in enumerate(self.opts[i]):
            if o.placement in ("gpu", "split"):
                twin = (o.rank, o.placement, tuple(self.sig[d] for d in o.devices))
                if twin in seen:
                    continue
                seen.add(twin)
            if not self._fits(o, caps):
                continue
            if o.cost is None:
                scored.append(((o.rank, 0, 0, idx), o))
                continue
            key = (o.cost.model, o.devices)
            headroom = min(self.usable[d] - self._new_load(d, key, o.cost) for d in o.devices)
            shared = sum(self.count[d] for d in o.devices)
            scored.append(((o.rank, shared, headroom, idx), o))
        scored.sort(key=lambda t: t[0])
        return [o for _, o in scored]

    def _bound(self, caps: list[int]) -> Key:
        """Lower bound of the objective key of any completion (each level given the ones before)."""
        unplaced, fallbacks, rank, gpu_agents, kv_need = self.unplaced, self.fallbacks, self.rank_sum, 0, 0
        twins: dict[int, list[int]] = {}
        for d in self.gpus:
            twins.setdefault(self.sig[d], []).append(d)
        reps = {d[0]: d for d in twins.values()}  # representative -> every device of its kind
        open_reps: set[int] = set()  # representatives some remaining agent still fits on
        open_devs: set[int] = set()  # split groups' devices
        for c, m in enumerate(self.remaining):
            if not m:
                continue
            r = self.rep[c]
            req = self.p.requests[r]
            w = req.priority
            best_rank = -1
            for k, devices in enumerate(self.singles[c]):
                cost = req.candidates[k]
                for d in reps:
                    # a device already known open needs no check, unless this class's best rank is unknown
                    if (
                        d in devices
                        and (best_rank < 0 or d not in open_reps)
                        and self._fits_single(d, cost, caps[d])
                    ):
                        open_reps.add(d)
                        best_rank = k if best_rank < 0 else best_rank
            for o in self.splits[c]:
                if self._fits(o, caps):
                    open_devs.update(o.devices)
                    best_rank = o.rank if best_rank < 0 else min(best_rank, o.rank)
            if best_rank >= 0:
                # every GPU placement costs at least the class's smallest KV cache (weights may be shared)
                rank, gpu_agents, kv_need = (
                    rank + m * w * best_rank,
                    gpu_agents + m,
                    kv_need + m * self.kv_floor[c],
                )
                continue
            cpu = next((o for o in self.opts[r] if o.placement == "cpu"), None)
            if cpu is not None and self._fits(cpu, caps):
                fallbacks, rank = fallbacks + m, rank + m * w * req.cpu_rank
            elif req.api:
                fallbacks, rank = fallbacks + m, rank + m * w * req.api_rank
            else:
                unplaced, rank = unplaced + m, rank + m * w * req.none_rank
        open_devs.update(t for d in open_reps for t in reps[d])
        return (
            unplaced,
            fallbacks,
            rank,
            self.pairs + self._spread(open_devs, gpu_agents),
            -self._cap(kv_need),
        )

    def _spread(self, devices: set[int], n: int) -> int:
        """Fewest new sharing pairs when n agents go onto these GPUs: always onto the emptiest."""
        heap = [self.count[d] for d in devices]
        if not heap or not n:
            return 0
        heapq.heapify(heap)
        added = 0
        for _ in range(n):
            c = heapq.heappop(heap)
            added += c
            heapq.heappush(heap, c + 1)
        return added

    def _cap(self, kv_need: int) -> int:
        """Upper bound of the final smallest GPU headroom."""
        if not self.gpus:
            return 0
        room = [self.usable[d] - self.load[d] for d in self.gpus]
        return min(min(room), (sum(room) - kv_need) // len(room))


def _difficulty(problem: Problem, i: int) -> int:
    """Hardest first: the largest best candidate (the CPU model when there is none)."""
    r = problem.requests[i]
    first = r.candidates[0] if r.candidates else r.cpu
    return first.total_bytes if first is not None else 0
