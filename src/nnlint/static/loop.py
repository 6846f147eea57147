"""NNL5: training-loop mistakes (gradients, optimizer order, train/eval modes, leaked graphs)."""

from __future__ import annotations

from typing import cast

import libcst as cst

from nnlint.diagnostics import Applicability, Severity
from nnlint.imports import dotted_name
from nnlint.rule import Invalid, NodeFix, StaticRule
from nnlint.static.calls import get_arg, positional_args
from nnlint.static.facts.loops import (
    Event,
    LoopFacts,
    Scope,
    is_model_name,
    last_part,
    loop_facts,
    name_tokens,
)
from nnlint.static.rewrite import contains, statement_siblings, swap_statements
from nnlint.static.rng import is_tensor_list
from nnlint.tree import walk

_BACKWARDS = frozenset({"backward", "fw_backward"})
_GRAD_USE = frozenset({"backward", "fw_backward", "grad", "zero"})


class _LoopRule(StaticRule):
    """Rules that judge the whole file's loops once the walk is done."""

    def leave_Module(self, node: cst.Module) -> None:
        facts = loop_facts(self.ctx)
        if facts is not None:
            self.check(facts)

    def check(self, facts: LoopFacts) -> None:
        raise NotImplementedError


def _call_text(event: Event) -> str:
    """How the call reads in the source, without its arguments unless they name the optimizer."""
    call = event.node
    func = dotted_name(call.func) if isinstance(call, cst.Call) else None
    if func is None:
        return "the gradient reset"
    args = positional_args(call)
    shown = dotted_name(args[0].value) if args and event.kind == "step" else None
    return f"`{func}({shown or ''})`"


def _enclosing(event: Event, loop: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """The loops around `loop` (outermost first), read off an event inside it."""
    return event.loops[:event.loops.index(loop)]


def _opt_steps(facts: LoopFacts, events: list[Event]) -> list[tuple[Event, str]]:
    found = []
    for event in events:
        optimizer = facts.stepped_optimizer(event)
        if optimizer is not None:
            found.append((event, optimizer))
    return found


class MissingZeroGrad(_LoopRule):
    """A loop calls `backward()` and an optimizer's `step()` but never clears the gradients.

    `backward()` adds to `.grad`; without `optimizer.zero_grad()` (or `model.zero_grad()`, or setting
    `p.grad = None`) every step applies the sum of all gradients so far and training diverges or
    stalls. Call `optimizer.zero_grad()` once per step, before `loss.backward()` (with gradient
    accumulation, right after `optimizer.step()`).
    """

    code = "NNL501"
    name = "missing-zero-grad"
    severity = Severity.ERROR
    VALID = (
        "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\nfor x, y in loader:\n"
        "    opt.zero_grad()\n    loss = loss_fn(model(x), y)\n    loss.backward()\n    opt.step()\n",
        "import torch\nfor x, y in loader:\n    model.zero_grad(set_to_none=True)\n"
        "    loss_fn(model(x), y).backward()\n"
        "    optimizer.step()\n",
        "import torch\nfor x, y in loader:\n    for p in model.parameters():\n        p.grad = None\n"
        "    loss_fn(model(x), y).backward()\n    optimizer.step()\n",
        "import torch\nfor i, (x, y) in enumerate(loader):\n    loss = loss_fn(model(x), y) / 4\n    loss.backward()\n"
        "    if (i + 1) % 4 == 0:\n        optimizer.step()\n        optimizer.zero_grad()\n",
        "import torch\nfor batch in loader:\n    loss = model(batch).loss\n    accelerator.backward(loss)\n"
        "    optimizer.step()\n",
        "import lightning as L\nclass Net(L.LightningModule):\n    def training_step(self, batch, idx):\n"
        "        return self.model(batch).loss\n",
        "import torch\ndef clear(opt):\n    opt.zero_grad()\nfor x in loader:\n    clear(optimizer)\n"
        "    model(x).sum().backward()\n    optimizer.step()\n",
        "import gym\nimport torch\nfor t in range(100):\n    obs, r, done, info = env.step(policy(obs))\n"
        "    loss.backward()\n",
    )
    INVALID = (
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\nfor x, y in loader:\n"
        "    loss = loss_fn(model(x), y)\n    loss.backward()\n    opt.step()  # <-\n",
        "import torch\noptimizer.zero_grad()\nfor epoch in range(10):\n    for x, y in loader:\n"
        "        scaler.scale(loss_fn(model(x), y)).backward()\n        scaler.step(optimizer)  # <-\n"
        "        scaler.update()\n",
        "import torch\nfrom tqdm import tqdm\nstep = 0\nwhile step < 1000:\n    for x, y in tqdm(loader):\n"
        "        loss_fn(model(x), y).backward()\n        self.optimizer.step()  # <-\n        step += 1\n",
    )

    def check(self, facts: LoopFacts) -> None:
        for scope in facts.scopes:
            grouped = facts.loop_events(scope)
            stepping = {}
            cleared = set()
            for loop, events in grouped.items():
                if self._clears(facts, events):
                    cleared.add(loop)
                steps = _opt_steps(facts, events)
                if steps and any(e.kind == "backward" for e in events):
                    stepping[loop] = steps[0][0]
            for loop, step in stepping.items():
                if loop in cleared:
                    continue
                if any(o in cleared for o in _enclosing(grouped[loop][0], loop)):
                    continue  # e.g. micro-batch loop inside a step loop that clears
                if any(other is not loop and loop in _enclosing(grouped[other][0], other) for other in stepping):
                    continue  # an inner loop steps too: report the innermost
                self.report(step.node, f"the loop calls `backward()` and {_call_text(step)} but never clears "
                                       f"gradients, so they accumulate across steps: call "
                                       f"`{facts.stepped_optimizer(step)}.zero_grad()` before `backward()`")

    @staticmethod
    def _clears(facts: LoopFacts, events: list[Event]) -> bool:
        for event in events:
            if event.kind == "zero":
                return True
            if event.kind == "call" and any(facts.reaches(s, frozenset({"zero"})) for s in facts.local_targets(event)):
                return True
        return False


def _blocks(scope: Scope) -> dict[cst.CSTNode, list[Event]]:
    """Every control block of the scope with all events inside it (nested ones too), in order."""
    grouped: dict[cst.CSTNode, list[Event]] = {scope.node: list(scope.events)}
    for event in scope.events:
        for block in event.blocks:
            grouped.setdefault(block, []).append(event)
    return grouped


class ZeroGradBeforeStep(_LoopRule):
    """`zero_grad()` between `backward()` and `step()`, or `step()` before `backward()`, in one iteration.

    Clearing gradients after `loss.backward()` but before `optimizer.step()` makes the step use zero
    gradients: the model never learns. Calling `step()` before `backward()` applies the previous
    batch's gradients (or none). The order per iteration is `zero_grad()`, `backward()`, `step()`.
    The fix swaps the misplaced call with the `backward()` right next to it.
    """

    code = "NNL507"
    name = "zero-grad-before-step"
    severity = Severity.ERROR
    fixable = True
    VALID = (
        "import torch\nfor x, y in loader:\n    optimizer.zero_grad()\n    loss_fn(model(x), y).backward()\n"
        "    optimizer.step()\n",
        "import torch\nfor x, y in loader:\n    loss_fn(model(x), y).backward()\n    optimizer.step()\n"
        "    optimizer.zero_grad()\n",
        "import torch\nfor x in loader:\n    opt_d.zero_grad()\n    d_loss(x).backward()\n    opt_d.step()\n"
        "    opt_g.zero_grad()\n    g_loss(x).backward()\n    opt_g.step()\n",
        "import torch\nfor i, x in enumerate(loader):\n    if i and i % 4 == 0:\n        optimizer.step()\n"
        "        optimizer.zero_grad()\n    model(x).sum().backward()\n",
        "import torch\nfor x in loader:\n    d_loss(x).backward()\n    net_g.zero_grad()\n    opt_d.step()\n"
        "    opt_g.step()\n",
    )
    INVALID = (
        Invalid("import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
                "    optimizer.zero_grad()  # <-\n    optimizer.step()\n",
                fixed="import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    optimizer.zero_grad()\n"
                "    loss.backward()\n    optimizer.step()\n"),
        Invalid("import torch\nfor x, y in loader:\n    optimizer.zero_grad()\n    optimizer.step()  # <-\n"
                "    loss_fn(model(x), y).backward()\n",
                fixed="import torch\nfor x, y in loader:\n    optimizer.zero_grad()\n"
                      "    loss_fn(model(x), y).backward()\n"
                "    optimizer.step()\n"),
        Invalid("import torch\nopt = torch.optim.SGD(params, lr=0.1)\ndef train_step(x):\n"
                "    model(x).sum().backward()\n"
                "    model.zero_grad()  # <-\n    opt.step()\n",
                fixed="import torch\nopt = torch.optim.SGD(params, lr=0.1)\ndef train_step(x):\n    model.zero_grad()\n"
                "    model(x).sum().backward()\n    opt.step()\n"),
        # Not next to each other: moving one call past the others is left to the author.
        Invalid("import torch\nfor x, y in loader:\n    loss_fn(model(x), y).backward()\n    log(model)\n"
                "    optimizer.zero_grad()  # <-\n    optimizer.step()\n",
                fixed="import torch\nfor x, y in loader:\n    loss_fn(model(x), y).backward()\n    log(model)\n"
                "    optimizer.zero_grad()\n    optimizer.step()\n"),
    )

    def check(self, facts: LoopFacts) -> None:
        for scope in facts.scopes:
            if not any(e.kind in _BACKWARDS for e in scope.events):
                continue
            optimizers = {o for _, o in _opt_steps(facts, scope.events)}
            for block, events in _blocks(scope).items():
                self._check_block(facts, block, events, optimizers)

    def _check_block(self, facts, block, events, optimizers) -> None:
        backward_seen = False
        for i, event in enumerate(events):
            direct = event.block is block
            if event.kind in _BACKWARDS:
                backward_seen = True
            elif direct and event.kind == "zero" and backward_seen:
                self._zero_between(facts, event, events, i, optimizers)
            elif direct and not backward_seen and event.kind == "step" and not self._has_closure(facts, event):
                optimizer = facts.stepped_optimizer(event)
                backward = next((e for e in events[i:] if e.kind in _BACKWARDS and e.block is block), None)
                if optimizer and backward is not None:
                    self.report(event.node, f"{_call_text(event)} runs before `backward()` in this iteration, so "
                                            "it applies stale (or no) gradients: call it after `backward()`",
                                self._swap(event, backward, +1, "move the step after backward()"))

    def _zero_between(self, facts, zero: Event, events, i, optimizers) -> None:
        # The backward before this zero_grad must not have been consumed by a step already.
        for backward in reversed(events[:i]):
            if backward.kind in _BACKWARDS:
                if backward.block is not zero.block:
                    return
                break
            if facts.stepped_optimizer(backward):
                return
        for later in events[i + 1:]:
            if later.kind in _BACKWARDS:
                return
            optimizer = facts.stepped_optimizer(later)
            if optimizer and later.block is zero.block:
                same = zero.name == optimizer or (not facts.is_optimizer(zero.name) and len(optimizers) == 1)
                if same:
                    self.report(zero.node, f"{_call_text(zero)} clears the gradients after `backward()` and "
                                           f"before {_call_text(later)}, so the step uses zero gradients: "
                                           "clear them before `backward()`",
                                self._swap(zero, backward, -1, "clear the gradients before backward()"))
                return

    def _swap(self, event: Event, other: Event, offset: int, message: str) -> NodeFix | None:
        """Exchange `event`'s statement with its neighbour when that neighbour is `other`'s statement.

        Safe: only the two calls trade places, giving the documented per-iteration order
        (zero_grad, backward, step); nothing else runs earlier or later than before."""
        found = statement_siblings(event.block, event.node)
        if found is None:
            return None
        statements, index = found
        if not 0 <= index + offset < len(statements) or not contains(statements[index + offset], other.node):
            return None
        if not isinstance(statements[index + offset], cst.SimpleStatementLine):
            return None
        return swap_statements(self.ctx.module, statements[index], statements[index + offset], message,
                               Applicability.SAFE)

    @staticmethod
    def _has_closure(facts, event: Event) -> bool:
        return event.name == facts.stepped_optimizer(event) and bool(event.node.args)


class SchedulerBeforeOptimizer(_LoopRule):
    """`scheduler.step()` before `optimizer.step()` in the same iteration.

    Since PyTorch 1.1 the scheduler must step after the optimizer; stepping it first skips the first
    value of the learning-rate schedule (and PyTorch warns). Move `scheduler.step()` after
    `optimizer.step()` (per batch or per epoch, as the schedule intends). The fix moves it past the
    next statement when that statement steps the optimizer: safe when that statement is the
    `optimizer.step()` call itself, unsafe when it is a loop or a call that may also read the learning rate.
    """

    code = "NNL508"
    name = "scheduler-before-optimizer"
    severity = Severity.WARNING
    fixable = True
    VALID = (
        "import torch\nfor x in loader:\n    optimizer.zero_grad()\n    model(x).sum().backward()\n"
        "    optimizer.step()\n    scheduler.step()\n",
        "import torch\nfor epoch in range(10):\n    for x in loader:\n        optimizer.zero_grad()\n"
        "        model(x).sum().backward()\n        optimizer.step()\n    scheduler.step()\n",
        "import torch\nfor t in noise_scheduler.timesteps:\n"
        "    x = noise_scheduler.step(model(x, t), t, x).prev_sample\n",
        "import torch\nfor epoch in range(10):\n    if epoch > 0:\n        scheduler.step()\n"
        "    for x in loader:\n        optimizer.step()\n",
        "import timm\nimport torch\nfor epoch in range(10):\n    lr_scheduler.step(epoch)\n    for x in loader:\n"
        "        optimizer.step()\n",
    )
    INVALID = (
        Invalid("import torch\nfor x in loader:\n    optimizer.zero_grad()\n    model(x).sum().backward()\n"
                "    scheduler.step()  # <-\n    optimizer.step()\n",
                fixed="import torch\nfor x in loader:\n    optimizer.zero_grad()\n    model(x).sum().backward()\n"
                "    optimizer.step()\n    scheduler.step()\n"),
        Invalid("import torch\nsched = torch.optim.lr_scheduler.StepLR(opt, 10)\nfor epoch in range(10):\n"
                "    sched.step()  # <-\n    for x in loader:\n        opt.zero_grad()\n"
                "        model(x).sum().backward()\n"
                "        opt.step()\n",
                fixed="import torch\nsched = torch.optim.lr_scheduler.StepLR(opt, 10)\nfor epoch in range(10):\n"
                "    for x in loader:\n        opt.zero_grad()\n        model(x).sum().backward()\n"
                "        opt.step()\n    sched.step()\n"),
        Invalid("import torch\ndef train_epoch():\n    for x in loader:\n        optimizer.zero_grad()\n"
                "        model(x).sum().backward()\n        optimizer.step()\nfor epoch in range(10):\n"
                "    lr_scheduler.step()  # <-\n    train_epoch()\n",
                fixed="import torch\ndef train_epoch():\n    for x in loader:\n        optimizer.zero_grad()\n"
                "        model(x).sum().backward()\n        optimizer.step()\nfor epoch in range(10):\n"
                "    train_epoch()\n    lr_scheduler.step()\n"),
    )

    def check(self, facts: LoopFacts) -> None:
        for scope in facts.scopes:
            if not any(e.kind == "step" for e in scope.events):
                continue
            for block, events in _blocks(scope).items():
                for i, event in enumerate(events):
                    if self._steps_optimizer(facts, event):
                        break  # the optimizer already stepped in this block
                    if event.block is block and facts.is_scheduler_step(event):
                        follow = next((e for e in events[i + 1:] if self._steps_optimizer(facts, e)), None)
                        if follow is not None:
                            what = _call_text(follow)
                            self.report(event.node, f"{_call_text(event)} runs before {what} in this iteration, "
                                                    "which skips the first learning-rate value: step the scheduler "
                                                    "after the optimizer", self._fix(event, follow))
                        break

    def _fix(self, scheduler: Event, optimizer: Event) -> NodeFix | None:
        """Move the scheduler step past the next statement, when that statement steps the optimizer."""
        found = statement_siblings(scheduler.block, scheduler.node)
        if found is None or found[1] + 1 >= len(found[0]):
            return None
        statements, index = found
        following = statements[index + 1]
        if not contains(following, optimizer.node):
            return None
        # Safe when only the optimizer step trades places; a loop or helper call might read the LR too.
        direct = (isinstance(following, cst.SimpleStatementLine) and isinstance(following.body[0], cst.Expr)
                  and following.body[0].value is optimizer.node)
        return swap_statements(self.ctx.module, statements[index], following, "step the scheduler after the optimizer",
                               Applicability.SAFE if direct else Applicability.UNSAFE)

    @staticmethod
    def _steps_optimizer(facts: LoopFacts, event: Event) -> bool:
        if event.kind == "step":
            return facts.stepped_optimizer(event) is not None
        if event.kind == "call":
            return any(facts.reaches_optimizer_step(s) for s in facts.local_targets(event))
        return False


class LossAccumulatedWithGraph(_LoopRule):
    """A loss that still carries its autograd graph is summed or stored across iterations.

    `total += loss` or `losses.append(loss)` keeps a reference to each step's graph, so memory grows
    every step until the process runs out. Accumulate `loss.item()` (or `loss.detach()`) instead.
    The fix adds `.detach()`: the same value without the graph, still a tensor for later code.
    """

    code = "NNL505"
    name = "loss-accumulated-with-graph"
    severity = Severity.WARNING
    fixable = True
    VALID = (
        "import torch\ntotal = 0.0\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
        "    total += loss.item()\n",
        "import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss += 0.1 * aux\n"
        "    loss.backward()\n",
        "import torch\nlosses = []\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
        "    losses.append(loss.detach())\n",
        "import torch\ntotal = 0\nfor x, y in chunks:\n    loss = loss_fn(model(x), y)\n    total += loss\n"
        "total.backward()\n",
        "import torch\nlosses = []\nfor head in heads:\n    loss = head(x)\n    losses.append(loss)\n"
        "    loss.backward(retain_graph=True)\nsum(losses).backward()\n",
        "import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
        "    loss = loss.detach()\n    total += loss\n",
        "import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
        "    epoch_loss += loss.item() / len(loader)\n",
        # dividing by the loss is not accumulating it
        "import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n    ratio += 1 / loss\n",
    )
    INVALID = (
        Invalid("import torch\ntotal_loss = 0\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n"
                "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n    total_loss += loss  # <-\n",
                fixed="import torch\ntotal_loss = 0\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n"
                "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n"
                "    total_loss += loss.detach()\n"),
        Invalid("import torch\nhistory = []\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n"
                "    scaler.scale(loss).backward()\n    history.append(loss)  # <-\n",
                fixed="import torch\nhistory = []\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n"
                "    scaler.scale(loss).backward()\n    history.append(loss.detach())\n"),
        Invalid("import torch\nfor batch in loader:\n    loss = model(**batch).loss\n    accelerator.backward(loss)\n"
                "    running += loss * batch['x'].size(0)  # <-\n",
                fixed="import torch\nfor batch in loader:\n    loss = model(**batch).loss\n"
                      "    accelerator.backward(loss)\n"
                "    running += loss.detach() * batch['x'].size(0)\n"),
        Invalid("import torch\nepoch_loss = 0\nfor x, y in train_loader:\n    loss = loss_fn(model(x), y)\n"
                "    loss.backward()\n    epoch_loss += loss / len(train_loader)  # <-\n",
                fixed="import torch\nepoch_loss = 0\nfor x, y in train_loader:\n    loss = loss_fn(model(x), y)\n"
                "    loss.backward()\n    epoch_loss += loss.detach() / len(train_loader)\n"),
    )

    def check(self, facts: LoopFacts) -> None:
        for scope in facts.scopes:
            backwards = [e for e in scope.events if e.kind in _BACKWARDS]
            if not backwards:
                continue
            in_backward = {n for e in backwards for n in _names(e.extra)}
            in_backward |= {n for e in backwards if e.kind == "fw_backward" for n in _names(e.node)}
            detached = {e.name for e in scope.events if e.kind == "assign" and _detaches(e.extra)}
            grouped = facts.loop_events(scope)
            for event in scope.events:
                if event.kind not in ("accum", "append") or event.no_grad:
                    continue
                node = _accumulated(event)
                loss = node.value if node is not None else None
                if loss is None or loss in detached or event.name in in_backward or event.name is None:
                    continue
                if loss in self._backwarded(grouped[event.loops[-1]]):
                    shown = f"{event.name} += {loss}" if event.kind == "accum" else f"{event.name}.append({loss})"
                    # Safe: `.detach()` is the same tensor value without the graph, and nothing
                    # backpropagates through this accumulator (checked above). `.item()` would turn
                    # it into a float and break a later `total.item()`.
                    fix = NodeFix(f"accumulate {loss}.detach()", ((node, f"{loss}.detach()"),)) if node else None
                    self.report(event.node, f"`{shown}` keeps every step's autograd graph alive and memory grows: "
                                            f"accumulate `{loss}.item()` (or `{loss}.detach()`) instead", fix)

    @staticmethod
    def _backwarded(events: list[Event]) -> set[str]:
        names = set()
        for event in events:
            if event.kind == "backward":
                receiver = event.extra
                if isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute) \
                        and receiver.func.attr.value == "scale":  # scaler.scale(loss).backward()
                    receiver = get_arg(receiver, 0, "outputs")
                if isinstance(receiver, cst.Name):
                    names.add(receiver.value)
            elif event.kind == "fw_backward":
                args = positional_args(event.node)
                if args and isinstance(args[0].value, cst.Name):
                    names.add(args[0].value.value)
        return names


def _names(node) -> set[str]:
    if node is None:
        return set()
    return {n.value for n in walk(node) if isinstance(n, cst.Name)}


def _detaches(value) -> bool:
    """Whether an assigned value is cut from the graph: `loss.detach()`, `loss.item()`, `float(loss)`."""
    if isinstance(value, cst.Attribute):
        return value.attr.value == "data"
    if not isinstance(value, cst.Call):
        return False
    func = value.func
    if isinstance(func, cst.Name):
        return func.value in ("float", "int")
    return isinstance(func, cst.Attribute) and func.attr.value in ("detach", "item", "data", "cpu", "tolist", "numpy")


def _accumulated(event: Event) -> cst.Name | None:
    """The loss name that is added (`total += loss`, `+= loss * n`) or stored (`losses.append(loss)`)."""
    if event.kind == "accum":
        value = event.extra
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Multiply):
            value = value.left if isinstance(value.left, cst.Name) else value.right
        elif isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Divide):
            value = value.left  # `epoch_loss += loss / len(loader)`: still the loss, scaled
    else:
        args = positional_args(event.node)
        value = args[0].value if len(args) == 1 and len(event.node.args) == 1 else None
    return value if isinstance(value, cst.Name) else None


_EVAL_WORDS = frozenset({"val", "valid", "validation", "validate", "test", "eval", "evaluation", "evaluate"})
_EVAL_FUNCTION_WORDS = frozenset({"evaluate", "evaluation", "validate", "validation", "eval", "valid", "val"})
_METRIC_WORDS = frozenset({"correct", "corrects", "acc", "accuracy", "metric", "metrics", "hits", "loss", "losses"})
_FROZEN_WORDS = frozenset({"teacher", "ema", "target", "frozen", "pretrained", "ref", "reference", "clip", "vgg",
                           "lpips", "inception", "feature", "features", "extractor", "critic", "tokenizer", "vae"})


def _is_pytest(scope: Scope) -> bool:
    words = name_tokens(scope.name)
    return (scope.name.startswith("test_") and "epoch" not in words) or (scope.class_name or "").startswith("Test")


def _iter_words(iterable) -> set[str]:
    words: set[str] = set()
    for node in walk(iterable):
        if isinstance(node, cst.Name):
            words |= name_tokens(node.value)
        elif isinstance(node, cst.SimpleString):
            words |= name_tokens(node.value)
    return words


class _EvalLoops(_LoopRule):
    """Shared detection of evaluation loops for NNL502 and NNL503."""

    by_metrics = True  # a no_grad loop computing metrics counts (pointless for NNL503)

    def eval_loops(self, facts: LoopFacts):
        """(scope, loop, model call event) for each evaluation loop that calls a model."""
        seen = set()
        for scope in facts.scopes:
            if _is_pytest(scope):
                continue
            words = name_tokens(scope.name)
            named = bool(words & _EVAL_FUNCTION_WORDS) or scope.name == "test" or {"test", "epoch"} <= words
            for loop, events in facts.loop_events(scope).items():
                if loop not in facts.loop_iters or any(e.kind in _GRAD_USE for e in events):
                    continue
                if any(facts.stepped_optimizer(e) for e in events):
                    continue
                call = next((e for e in events if self._is_model_call(facts, e)), None)
                if call is None or call.node in seen:
                    continue
                if named or _iter_words(facts.loop_iters[loop]) & _EVAL_WORDS or (
                        self.by_metrics and facts.loop_no_grad[loop] and self._metrics(events)):
                    seen.add(call.node)
                    yield scope, loop, call

    @staticmethod
    def _is_model_call(facts: LoopFacts, event: Event) -> bool:
        if event.kind != "call" or event.extra is not None or facts.local_targets(event):
            return False
        if name_tokens(last_part(event.name)) & _FROZEN_WORDS:
            return False
        return is_model_name(event.name) or event.name in facts.mode_receivers

    @staticmethod
    def _metrics(events: list[Event]) -> bool:
        return any(e.kind == "accum" and name_tokens(last_part(e.name)) & _METRIC_WORDS for e in events)

    def covered(self, facts: LoopFacts, scope: Scope, here, seen=None) -> bool:
        """Whether `here(scope)` holds, or every caller in the file covers its call sites."""
        seen = seen if seen is not None else set()
        if here(scope):
            return True
        if scope in seen:
            return True  # recursion: judged by the other callers
        seen.add(scope)
        callers = facts.callers.get(scope)
        if not callers:
            return False
        return all(self.site_covered(facts, call) or self.covered(facts, call.scope, here, seen) for call in callers)

    def site_covered(self, facts: LoopFacts, call: Event) -> bool:
        return False


class EvalModeMissing(_EvalLoops):
    """An evaluation loop runs the model without ever switching it to `eval()` mode.

    In training mode dropout stays active and BatchNorm uses (and updates) batch statistics, so
    validation numbers are noisy and wrong, and BatchNorm running stats drift. Call `model.eval()`
    before the loop (and `model.train()` before training resumes).
    """

    code = "NNL502"
    name = "eval-mode-missing"
    severity = Severity.WARNING
    VALID = (
        "import torch\ndef validate(model, loader):\n    model.eval()\n    with torch.no_grad():\n"
        "        for x, y in loader:\n            out = model(x)\n",
        "import torch\ndef run_val(model, loader):\n    with torch.no_grad():\n        for x, y in loader:\n"
        "            out = model(x)\nfor epoch in range(3):\n    model.train()\n    train(model)\n    model.eval()\n"
        "    run_val(model, val_loader)\n",
        "import torch\nfor x in train_loader:\n    model(x).sum().backward()\n",
        "import torch\ndef test_forward():\n    for x in inputs:\n        model(x)\n",
        "import torch\nmodel.train()\nwith torch.no_grad():\n    for x in loader:\n        feats = extract(x)\n",
        # no dropout or batch norm in the model: eval mode changes nothing
        "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc1 = nn.Linear(784, 500)\n        self.relu = nn.ReLU()\n        self.fc2 = nn.Linear(500, 10)\n"
        "    def forward(self, x):\n        return self.fc2(self.relu(self.fc1(x)))\n"
        "model = Net().to(device)\nfor x, y in train_loader:\n    model(x).sum().backward()\n"
        "with torch.no_grad():\n    for x, y in test_loader:\n        out = model(x)\n",
    )
    INVALID = (
        "import torch\ndef evaluate(model, loader):\n    correct = 0\n    with torch.no_grad():\n"
        "        for x, y in loader:\n"
        "            pred = model(x).argmax(1)  # <-\n            correct += (pred == y).sum().item()\n"
        "    return correct\nfor epoch in range(3):\n    model.train()\n    train(model)\n"
        "    evaluate(model, val_loader)\n",
        "import torch\nmodel.train()\nwith torch.no_grad():\n    for x, y in val_loader:\n"
        "        val_loss = criterion(net(x), y)  # <-\n",
        "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = nn.Linear(784, 10)\n        self.drop = nn.Dropout(0.5)\n"
        "    def forward(self, x):\n        return self.fc(self.drop(x))\n"
        "model = Net().to(device)\nfor x, y in train_loader:\n    model(x).sum().backward()\n"
        "with torch.no_grad():\n    for x, y in test_loader:\n        out = model(x)  # <-\n",
    )

    def check(self, facts: LoopFacts) -> None:
        # Only where the file trains: a model only loaded for inference may be switched elsewhere.
        if not any(e.kind in ("backward", "fw_backward", "train") for s in facts.scopes for e in s.events):
            return
        evals_in_class = {s.class_name for s in facts.scopes
                          if s.class_name and any(e.kind == "eval" for e in s.events)}

        def here(scope: Scope) -> bool:
            return any(e.kind == "eval" for e in scope.events) or scope.class_name in evals_in_class

        for scope, _loop, call in self.eval_loops(facts):
            if call.name in facts.eval_receivers or self.covered(facts, scope, here):
                continue
            if _modeless_model(self.ctx, call.name):
                continue  # no dropout or batch norm anywhere in it: train and eval mode compute the same
            self.report(call.node, f"`{call.name}` runs in an evaluation loop but is never put in eval mode: call "
                                   f"`{call.name}.eval()` before the loop (dropout and BatchNorm behave differently)")


# Layers whose output differs between train() and eval(); "training" catches forwards that branch on it.
_MODE_WORDS = ("Dropout", "dropout", "BatchNorm", "batch_norm", "training", "AlphaDropout")


def _modeless_model(ctx, name: str) -> bool:
    """Whether every `name = ...` in the file builds a model known to behave the same in train and eval
    mode: a torch.nn layer without dropout, or a class of this file made only of such layers."""
    built = [s.value for s in walk(ctx.module) if isinstance(s, cst.Assign) and len(s.targets) == 1
             and isinstance(s.targets[0].target, cst.Name) and s.targets[0].target.value == name]
    classes = {c.name.value: c for c in walk(ctx.module) if isinstance(c, cst.ClassDef)}
    return bool(built) and all(_modeless(ctx, value, classes, set()) for value in built)


def _modeless(ctx, value: cst.BaseExpression, classes: dict, seen: set) -> bool:
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in (
            "to", "cuda", "cpu", "double", "float"):
        value = value.func.value  # Net(...).to(device)
    if not isinstance(value, cst.Call):
        return False
    code = ctx.module.code_for_node(value)
    if any(word in code for word in _MODE_WORDS):
        return False
    qualname = ctx.call_name(value)
    if qualname is not None:
        return qualname.startswith("torch.nn.") and qualname.count(".") == 2
    cls = classes.get(value.func.value) if isinstance(value.func, cst.Name) else None
    if cls is None or cls.name.value in seen:
        return False
    seen.add(cls.name.value)
    if any(word in ctx.module.code_for_node(cls) for word in _MODE_WORDS):
        return False
    bases = [ctx.qualname(b.value) for b in cls.bases]
    if bases != ["torch.nn.Module"]:
        return False
    # Every layer it builds is itself modeless (torch.nn layers or classes of this file).
    return all(_modeless(ctx, call, classes, seen) for call in walk(cls)
               if isinstance(call, cst.Call) and _builds_layer(ctx, call, classes))


def _builds_layer(ctx, call: cst.Call, classes: dict) -> bool:
    if isinstance(call.func, cst.Name) and call.func.value in classes:
        return True
    qualname = ctx.call_name(call) or ""
    return qualname.startswith("torch.nn.") and qualname.rsplit(".", 1)[-1][:1].isupper()


class EvalWithoutNoGrad(_EvalLoops):
    """An evaluation loop runs the model with autograd on (no `torch.no_grad()`).

    Every forward pass records a graph that is never used, which wastes memory (often enough to run
    out of it on large validation batches) and time. Wrap the loop in `with torch.no_grad():` or
    `torch.inference_mode()`, or decorate the function with `@torch.no_grad()`.
    """

    code = "NNL503"
    name = "eval-without-no-grad"
    severity = Severity.WARNING
    by_metrics = False
    VALID = (
        "import torch\ndef validate(model, loader):\n    model.eval()\n    with torch.no_grad():\n"
        "        for x, y in loader:\n            out = model(x)\n",
        "import torch\n@torch.no_grad()\ndef evaluate(model, loader):\n    model.eval()\n    for x, y in loader:\n"
        "        out = model(x)\n",
        "import torch\ndef run_eval(model, loader):\n    for x, y in loader:\n        out = model(x)\n"
        "with torch.inference_mode():\n    run_eval(model, val_loader)\n",
        "import torch\nmodel.eval()\nfor x, y in val_loader:\n    x.requires_grad_(True)\n"
        "    grads = torch.autograd.grad(model(x).sum(), x)\n",
    )
    INVALID = (
        "import torch\ndef validate(model, loader):\n    model.eval()\n    for x, y in loader:\n"
        "        out = model(x)  # <-\n",
        "import torch\nmodel.eval()\nfor batch in test_loader:\n    preds = model(batch)  # <-\n",
    )

    def check(self, facts: LoopFacts) -> None:
        def here(scope: Scope) -> bool:
            return scope.no_grad_decorated

        for scope, loop, call in self.eval_loops(facts):
            if call.no_grad or facts.loop_no_grad[loop] or self.covered(facts, scope, here):
                continue
            self.report(call.node, f"`{call.name}` runs in an evaluation loop with autograd on, recording graphs "
                                   "for nothing: wrap the loop in `with torch.no_grad():`")

    def site_covered(self, facts: LoopFacts, call: Event) -> bool:
        return call.no_grad


class TrainModeNotRestored(_LoopRule):
    """An epoch loop switches the model to `eval()` and never back to `train()`.

    After the first evaluation every later epoch trains in eval mode: dropout is off and BatchNorm
    stops updating its statistics, silently hurting accuracy. Call `model.train()` at the start of
    each epoch (or at the end of the evaluation function).
    """

    code = "NNL504"
    name = "train-mode-not-restored"
    severity = Severity.WARNING
    VALID = (
        "import torch\nfor epoch in range(10):\n    model.train()\n    for x in loader:\n"
        "        optimizer.zero_grad()\n"
        "        model(x).sum().backward()\n        optimizer.step()\n    model.eval()\n    validate(model)\n",
        "import torch\ndef evaluate(model):\n    model.eval()\n    run(model)\n    model.train()\n"
        "for epoch in range(10):\n    for x in loader:\n        model(x).sum().backward()\n    evaluate(model)\n",
        "import torch\nfor step, x in enumerate(loader):\n    teacher.eval()\n    loss = kd(student(x), teacher(x))\n"
        "    loss.backward()\n",
    )
    INVALID = (
        "import torch\nmodel.train()\nfor epoch in range(10):\n    for x in loader:\n        optimizer.zero_grad()\n"
        "        model(x).sum().backward()\n        optimizer.step()\n    model.eval()  # <-\n    validate(model)\n",
        "import torch\ndef evaluate(model):\n    model.eval()\n    return run(model)\ndef train_epoch(model):\n"
        "    for x in loader:\n        model(x).sum().backward()\nfor epoch in range(10):\n    train_epoch(model)\n"
        "    evaluate(model)  # <-\n",
    )

    def check(self, facts: LoopFacts) -> None:
        reported = set()
        train_kinds, eval_kinds = frozenset({"train"}), frozenset({"eval"})
        for scope in facts.scopes:
            for _loop, events in facts.loop_events(scope).items():
                trains = False
                first_eval = None
                restored = False
                for event in events:
                    if event.kind in _BACKWARDS:
                        trains = True
                    elif event.kind == "train":
                        restored = True
                    elif event.kind == "eval":
                        if first_eval is None and not name_tokens(last_part(event.name)) & _FROZEN_WORDS:
                            first_eval = event
                    elif event.kind == "call":
                        for callee in facts.local_targets(event):
                            trains = trains or facts.reaches(callee, _BACKWARDS)
                            if facts.reaches(callee, train_kinds):
                                restored = True
                            elif first_eval is None and facts.reaches(callee, eval_kinds):
                                first_eval = event
                if trains and first_eval is not None and not restored and first_eval.node not in reported:
                    reported.add(first_eval.node)
                    direct = first_eval.kind == "eval" and first_eval.name
                    what = f"`{first_eval.name}.eval()`" if direct else _call_text(first_eval)
                    fix = f"`{first_eval.name}.train()`" if direct else "`model.train()`"
                    self.report(first_eval.node, f"{what} switches to eval mode inside this training loop and "
                                                 "`train()` is never called again, so later epochs train in eval "
                                                 f"mode: call {fix} at the start of each epoch")


_NOT_MODULE_WORDS = frozenset({"obj", "cuda", "kernel", "kernels", "ext", "extension", "op", "ops", "fn", "func",
                               "function", "impl", "pipeline", "pipe", "lib", "jit", "scripted", "traced", "compiled",
                               "session", "runner", "remote", "rpc", "mobile", "script"})


class ForwardCalledDirectly(StaticRule):
    """`model.forward(x)` instead of `model(x)`: forward and backward hooks are skipped.

    `nn.Module.__call__` runs registered hooks (used by pruning, quantization, profilers, FSDP and
    many libraries) around `forward`. Call the module itself: `model(x)`. The fix rewrites the call:
    safe when the receiver is surely a module (it is switched with `.train()`/`.eval()` in this file),
    unsafe when only its name says so.
    """

    code = "NNL506"
    name = "forward-called-directly"
    severity = Severity.WARNING
    fixable = True
    VALID = (
        "import torch\nout = model(x)\n",
        "from torch import nn\nclass Net(nn.Linear):\n    def forward(self, x):\n"
        "        return super().forward(x) * 2\n",
        "from torch import nn\nclass Net(Base):\n    def forward(self, x):\n        return Base.forward(self, x)\n",
        "from torch import nn\nclass Net(nn.Linear):\n    def forward(self, x):\n"
        "        return nn.Linear.forward(self, x)\n",
        "import torch\nclass Net(torch.nn.Module):\n    def run(self, x):\n        return self.forward(x)\n",
        "import numpy as np\nout = pipeline.forward(x)\n",
        "import torch\ndef remote_forward(remote_module, args):\n    return remote_module.forward(*args)\n",
        "import torch\nresult = self._xielu_cuda_obj.forward(x)\n",
    )
    INVALID = (
        Invalid("import torch\nlogits = model.forward(x)  # <-\n", fixed="import torch\nlogits = model(x)\n"),
        Invalid("import torch\nnet.eval()\nwith torch.no_grad():\n    feats = net.forward(images)  # <-\n",
                fixed="import torch\nnet.eval()\nwith torch.no_grad():\n    feats = net(images)\n"),
        Invalid("import torch\nclass Wrapper(torch.nn.Module):\n    def forward(self, x):\n"
                "        return self.backbone.forward(x)  # <-\n",
                fixed="import torch\nclass Wrapper(torch.nn.Module):\n    def forward(self, x):\n"
                "        return self.backbone(x)\n"),
    )

    def __init__(self, ctx):
        super().__init__(ctx)
        self._calls: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "forward":
            self._calls.append(node)

    def leave_Module(self, node: cst.Module) -> None:
        if not self._calls:
            return
        facts = loop_facts(self.ctx)
        if facts is None:
            return
        for call in self._calls:
            receiver = cast(cst.Attribute, call.func).value
            name = dotted_name(receiver)
            if name is None or name in ("self", "cls") or last_part(name)[:1].isupper():
                continue  # super().forward(), self.forward(), Base.forward(self, ...)
            # Only receivers that are clearly models: RPC/remote/scripted objects and wrappers that
            # deliberately bypass hooks (`self.module.forward`) also define `forward`.
            if not (is_model_name(name) or name in facts.mode_receivers):
                continue
            if name_tokens(last_part(name)) & _NOT_MODULE_WORDS or self.ctx.qualname(receiver) is not None:
                continue
            first = positional_args(call)
            if first and isinstance(first[0].value, cst.Name) and first[0].value.value == "self":
                continue  # unbound call on a base class held in a variable
            # Running the hooks is the point; the call is unchanged otherwise (`__call__` passes
            # every argument to `forward`). Unsafe when only the name suggests a module.
            sure = name in facts.mode_receivers
            fix = NodeFix(f"call `{name}(...)`", ((call.func, receiver),),
                          Applicability.SAFE if sure else Applicability.UNSAFE)
            self.report(call, f"`{name}.forward(...)` skips the module's hooks: call `{name}(...)` instead", fix)


_ADAMS = frozenset(
    f"torch.optim.{path}" for path in ("Adam", "AdamW", "RAdam", "NAdam", "adam.Adam", "adamw.AdamW",
                                       "radam.RAdam", "nadam.NAdam")
)


class AdamHighLearningRate(StaticRule):
    """Adam-family optimizer with a literal learning rate of 0.01 or more.

    Adam's per-parameter scaling makes its step size roughly the learning rate itself; 1e-2 or more
    usually makes training unstable or diverge. The usual range is 1e-4 to 3e-3 (1e-3 is the
    default). Lower it, or use a warmup schedule if a high peak rate is really intended. An Adam over
    listed input tensors (`Adam([image], lr=0.1)`: feature visualization, style transfer) updates pixels,
    not weights, and is not reported.
    """

    code = "NNL509"
    name = "adam-high-learning-rate"
    severity = Severity.INFO
    VALID = (
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
        "from torch import optim\nopt = optim.AdamW(params, 3e-3)\n",
        "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=args.lr)\n",
        "from keras.optimizers import Adam\nopt = Adam(lr=0.01)\n",
        # optimizing an image: large steps on pixels are the point
        "from torch.optim import Adam\noptimizer = Adam([processed_image], lr=0.1, weight_decay=1e-6)\n",
    )
    INVALID = (
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=0.01)  # <-\n",
        "from torch.optim import AdamW\nopt = AdamW(params, 1e-1)  # <-\n",
        "import torch.optim as optim\nopt = optim.RAdam(params, lr=1)  # <-\n",
    )

    def visit_Call(self, node: cst.Call) -> None:
        if not isinstance(node.func, (cst.Attribute, cst.Name)):
            return
        name = self.ctx.call_name(node)
        if name not in _ADAMS:
            return
        params = get_arg(node, 0, "params")
        if params is not None and is_tensor_list(params):
            return  # updating input pixels or a latent (feature visualization, style transfer), not weights
        lr = get_arg(node, 1, "lr")
        if isinstance(lr, (cst.Float, cst.Integer)):
            value = float(lr.evaluated_value)
            if value >= 0.01:
                self.report(lr, f"{last_part(name)} learning rate {lr.value} is high (Adam's usual range is 1e-4 to "
                                "3e-3): lower it, e.g. lr=1e-3")
