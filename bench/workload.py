"""Request files per target: every product request valid, at the right node and step.

The product (correctly) refuses a replayed step, so each step request gets a call of its
own, prepared in Redis through the product's own :class:`CallStore` in exactly the state
the product's own engine reaches at that point of a call (pipelined, thousands per round
trip). The whole-call mix is every webhook of whole calls in their real proportions
(``/voice``, menu, a wrong PIN for half the callers, the right PIN, status callback),
each on its own call prepared at that point, shuffled: the same work per request as
calls walked end to end, but valid at any rate and from the first second of a run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bench.accounts import Account, account
from bench.plan import Kind, Store
from bench.webhooks import CallSids, Signer, Webhook, status_params, voice_params
from ivr.calls import utc_now
from ivr.config import Settings
from ivr.flow import engine
from ivr.flow.actions import Action, Gather
from ivr.flow.model import Flow
from ivr.flow.state import (
    CallerLookedUp,
    CallStarted,
    CallState,
    Digits,
    Event,
    LookupCaller,
    PinChecked,
    Step,
    Verdict,
    VerifyPin,
)
from ivr.jobs import utc_iso
from ivr.services import load_default_flow
from ivr.store.calls import encode
from ivr.store.keys import KeyLayout
from ivr.store.link import Link
from ivr.store.redis_client import open_link
from ivr.store.rounds import command
from ivr.twiml import step_url

PIPELINE_BATCH = 5_000
MENU_KEY = "1"  # payments: a topic that needs the PIN (SPEC §3)
# Webhooks per whole call: /voice, menu, right PIN, status, plus a wrong PIN for half.
HOOKS_PER_CALL = 4.5


@dataclass
class Workload:
    """Generates signed request lines for each kind of target."""

    flow: Flow
    # The product's own connection to its state Redis (any topology).
    link: Link
    call_ttl_s: int
    keys: KeyLayout
    signer: Signer
    accounts: dict[Store, int]
    sids: CallSids = field(default_factory=CallSids)
    rng: random.Random = field(default_factory=lambda: random.Random(5))  # noqa: S311
    _cursor: dict[Store, int] = field(default_factory=dict)

    @classmethod
    def for_settings(
        cls, settings: Settings, auth_token: str, accounts: dict[Store, int]
    ) -> Workload:
        """Requests for the product configured by ``settings``, signed with ``auth_token``;
        calls are prepared on its ``[redis] url`` (close with :meth:`close`)."""
        return cls(
            flow=load_default_flow(settings), link=open_link(settings.redis, socket_timeout_s=30),
            call_ttl_s=settings.redis.call_ttl_s, keys=KeyLayout(settings.redis.key_prefix),
            signer=Signer(auth_token), accounts=accounts,
        )  # fmt: skip

    def close(self) -> None:
        """Close the connection the calls are prepared on."""
        self.link.close()

    def lines(self, kind: Kind, store: Store, count: int) -> list[str]:
        """About ``count`` signed request lines for ``kind`` (calls prepared in Redis)."""
        if kind is Kind.BASELINE:
            return [self.signer.line(self._start(account(0))) for _ in range(count)]
        if kind is Kind.PEER:
            hook = self._start(account(0))
            return [self.signer.line(Webhook("/ivr/welcome", hook.params)) for _ in range(count)]
        if kind is Kind.FLOOR:
            # PIN requests as the product gets them; the floor keeps no prepared calls.
            pins = (self._random_pin(self._next_account(store)) for _ in range(count))
            return [self.signer.line(hook) for hook, _ in pins]
        batch: list[tuple[Webhook, CallState | None]] = []
        if kind is Kind.MIX:
            for index in range(int(count / HOOKS_PER_CALL) + 1):
                acc = self._next_account(store)
                batch.extend(self._whole_call(acc, wrong_first=index % 2 == 0))
        for _ in range(count if kind is not Kind.MIX else 0):
            acc = self._next_account(store)
            if kind is Kind.MENU:
                batch.append(self._menu(acc))
            else:
                batch.append(self._random_pin(acc))
        self._create([state for _, state in batch if state is not None])
        lines = [self.signer.line(hook) for hook, _ in batch]
        # Menu, PIN and status requests of a call are independent (each has its own
        # prepared call), so shuffling spreads every kind evenly over the run.
        self.rng.shuffle(lines)
        return lines

    def probe_hooks(self, store: Store, count: int) -> dict[str, list[Webhook]]:
        """``count`` webhooks of every kind a call makes, their calls prepared in Redis."""
        kinds: dict[str, list[tuple[Webhook, CallState | None]]] = {
            "/voice (call starts)": [],
            "menu step (key 1)": [],
            "PIN step, wrong PIN": [],
            "PIN step, right PIN": [],
            "PIN step, right PIN after a wrong one": [],
            "status callback (completed)": [],
        }
        for _ in range(count):
            acc = self._next_account(store)
            hooks = self._whole_call(acc, wrong_first=True)
            hooks.insert(3, self._pin(acc, wrong=False))
            for hooks_of_kind, hook in zip(kinds.values(), hooks, strict=True):
                hooks_of_kind.append(hook)
        self._create([s for hooks in kinds.values() for _, s in hooks if s is not None])
        return {name: [hook for hook, _ in hooks] for name, hooks in kinds.items()}

    def call_paths(self) -> CallPaths:
        """The menu and PIN step URLs of a call, as the product renders them."""
        acc = account(0)
        menu = _gather(self._at_menu(acc).actions)
        pin = _gather(self._at_pin(acc).actions)
        return CallPaths(step_url(menu), step_url(pin))

    # --- one request each ----------------------------------------------------------------

    def _start(self, acc: Account) -> Webhook:
        return Webhook("/voice", voice_params(self.sids.new(), acc.phone, status="ringing"))

    def _menu(self, acc: Account) -> tuple[Webhook, CallState]:
        return self._press(self._at_menu(acc), acc, MENU_KEY)

    def _pin(self, acc: Account, *, wrong: bool) -> tuple[Webhook, CallState]:
        return self._press(self._at_pin(acc), acc, acc.wrong_pin if wrong else acc.pin)

    def _random_pin(self, acc: Account) -> tuple[Webhook, CallState]:
        """A wrong or the right PIN, 50/50 at random."""
        return self._pin(acc, wrong=self.rng.random() < 0.5)  # noqa: S311

    def _whole_call(
        self, acc: Account, *, wrong_first: bool
    ) -> list[tuple[Webhook, CallState | None]]:
        hooks: list[tuple[Webhook, CallState | None]] = [(self._start(acc), None)]
        hooks.append(self._menu(acc))
        if wrong_first:
            hooks.append(self._pin(acc, wrong=True))
            hooks.append(self._press(self._after_wrong_pin(acc), acc, acc.pin))
        else:
            hooks.append(self._pin(acc, wrong=False))
        verified = PinChecked(Verdict.VERIFIED, _now(), f"Kunde {acc.index}")
        routed = self._judge(self._at_pin(acc), verified)
        sid = routed.state.call_sid
        hooks.append((Webhook("/voice/status", status_params(sid, acc.phone)), routed.state))
        return hooks

    def _press(self, step: Step, acc: Account, digits: str) -> tuple[Webhook, CallState]:
        gather = _gather(step.actions)
        params = voice_params(step.state.call_sid, acc.phone, digits=digits)
        return Webhook(step_url(gather), params), step.state

    # --- calls at a point of the flow, as the product's engine leaves them ----------------

    def _at_menu(self, acc: Account) -> Step:
        return engine.advance(self.flow, None, CallStarted(self.sids.new(), acc.phone, _now()))

    def _at_pin(self, acc: Account) -> Step:
        menu = self._at_menu(acc)
        gather = _gather(menu.actions)
        step = engine.advance(self.flow, menu.state, Digits(gather.node, gather.seq, MENU_KEY))
        if not isinstance(step.need, LookupCaller):
            raise RuntimeError(f"menu key {MENU_KEY} did not lead to the caller lookup")
        return engine.advance(self.flow, step.state, CallerLookedUp(acc.customer_number))

    def _after_wrong_pin(self, acc: Account) -> Step:
        return self._judge(self._at_pin(acc), PinChecked(Verdict.WRONG, _now()))

    def _judge(self, at_pin: Step, verdict: Event) -> Step:
        """Enter a PIN at the PIN prompt and apply ``verdict`` as the verification result."""
        gather = _gather(at_pin.actions)
        step = engine.advance(self.flow, at_pin.state, Digits(gather.node, gather.seq, "0" * 6))
        if not isinstance(step.need, VerifyPin):
            raise RuntimeError(f"the flow did not verify the PIN entered at {gather.node}")
        return engine.advance(self.flow, step.state, verdict)

    def _create(self, states: list[CallState]) -> None:
        for start in range(0, len(states), PIPELINE_BATCH):
            # Exactly as CallStore.create stores them, thousands per round.
            commands = [
                command("SET", self.keys.call(state.call_sid), encode(state), "NX", "EX",
                        self.call_ttl_s)
                for state in states[start : start + PIPELINE_BATCH]
            ]  # fmt: skip
            created = self.link.send(commands, "prepare calls")
            if not all(reply is not None for reply in created):
                raise RuntimeError("a prepared call already existed in Redis (CallSid reused)")

    def _next_account(self, store: Store) -> Account:
        total = self.accounts[store]
        if store is Store.LARGE:
            # Uniformly over the whole store, so lookups hit cold pages as in production.
            return account(self.rng.randrange(total))
        index = self._cursor.get(store, 0)
        self._cursor[store] = index + 1
        return account(index % total)


@dataclass(frozen=True)
class CallPaths:
    """Step URLs of a call: where the menu and the PIN prompt post their digits."""

    menu: str
    pin: str


def _gather(actions: tuple[Action, ...]) -> Gather:
    for action in actions:
        if isinstance(action, Gather):
            return action
    raise RuntimeError("the flow did not ask for input where the benchmark expects it")


def _now() -> str:
    return utc_iso(utc_now())
