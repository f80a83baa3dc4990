"""`epochline history`: the champion's timeline, from the alias moves on record on the
registered model (registry.AliasMove), and which version was champion at a given time."""

from __future__ import annotations

from datetime import UTC, datetime

from epochline.core.errors import Failed, UserError
from epochline.core.params import load_params
from epochline.tracking import store
from epochline.tracking.registry import CHAMPION, PREVIOUS, AliasMove, Registry, utc_text
from epochline.tracking.tags import ALIAS_MOVE_PREFIX, Tag, tag_name

AT_FORMAT = "ISO 8601, e.g. 2026-03-03, 2026-03-03T12:00 or 2026-03-03T12:00:00+01:00"
# Where a registry from before the moves were recorded keeps what happened.
_VERSION_TAGS = ", ".join(
    tag_name(t) for t in (Tag.DECISION, Tag.REPLACED_VERSION, Tag.ROLLED_BACK, Tag.ROLLBACK_REASON)
)


class NoRegisteredModel(UserError):
    """Nothing to show: the registered model does not exist in this store."""


class NothingOnRecord(Failed):
    """`--at` cannot be answered: the registered model has no alias move on record."""


def parse_at(text: str) -> datetime:
    """`--at`'s time, in UTC: a time without an offset is UTC; a date alone, its midnight."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"--at {text!r} is not a time: use {AT_FORMAT} (UTC unless it says)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _at(move: AliasMove) -> datetime:
    return datetime.fromisoformat(move.when)


def _named(version: str | None) -> str:
    return f"v{version}" if version else "none"


def _why(text: str) -> str:
    return " ".join(text.split()) or "(no reason on record)"


def line(move: AliasMove) -> str:
    """2026-12-01T06:10:03Z  promote   champion v1 -> v2  by alice  why: better: …"""
    return (
        f"{move.when}  {move.kind:<8}  {move.alias} {_named(move.before)} -> "
        f"{_named(move.after)}  by {move.by or '?'}  why: {_why(move.why)}"
    )


def champion_at(moves: list[AliasMove], moment: datetime) -> str:
    """Which version was champion at `moment`, by the last move of the champion up to it."""
    at = utc_text(moment)
    champion = [m for m in moves if m.alias == CHAMPION]
    earlier = [m for m in champion if _at(m) <= moment]
    if not earlier:
        if champion and champion[0].before is not None:  # a registry older than its record
            return (
                f"at {at}: champion was v{champion[0].before} (the first move on record, at "
                f"{champion[0].when}, moved it; since when it was champion is not on record)"
            )
        first = champion[0].when if champion else "never"
        return f"at {at}: no champion yet (the first promotion was at {first})"
    last = earlier[-1]  # moves are in the order they were made; `when` is to the second
    if last.after is None:
        return f"at {at}: no champion (since {last.when}, {last.kind} by {last.by})"
    return (
        f"at {at}: champion was v{last.after} "
        f"(since {last.when}, {last.kind} by {last.by or '?'}: {_why(last.why)})"
    )


def _header(registry: Registry, moves: list[AliasMove]) -> list[str]:
    champion, previous = registry.alias(CHAMPION), registry.alias(PREVIOUS)
    now = str(champion.version) if champion else None
    said = [
        f"registered model {registry.name}: champion {_named(now)}, previous-champion "
        f"{_named(str(previous.version) if previous else None)}; {len(moves)} alias "
        f"move{'' if len(moves) == 1 else 's'} on record (tags {ALIAS_MOVE_PREFIX}*)"
    ]
    last = next((m for m in reversed(moves) if m.alias == CHAMPION), None)
    if last is not None and last.after != now and last.before == now:
        said.append(
            f"note: the last move ({_named(last.before)} -> {_named(last.after)}) is on record "
            "but the alias has not moved yet: the next retrain or rollback completes it"
        )
    elif last is not None and last.after != now:
        said.append(
            f"note: champion {_named(now)} was set outside epochline (the last move on record "
            f"made it {_named(last.after)}); that change is not on record"
        )
    return said


def history(registry: Registry, at: datetime | None = None) -> str:
    """The timeline (or, with `at`, the champion then) of a registered model that exists."""
    moves = registry.moves()
    if not moves:
        champion = registry.alias(CHAMPION)
        said = (
            f"registered model {registry.name}: champion "
            f"{_named(str(champion.version) if champion else None)}; no alias move on record "
            f"(moves are recorded since epochline wrote {ALIAS_MOVE_PREFIX}* tags; earlier "
            f"promotions and rollbacks show on the versions' tags {_VERSION_TAGS})"
        )
        if at is not None:
            raise NothingOnRecord(f"--at {utc_text(at)}: cannot tell; {said}")
        return said
    if at is not None:
        return champion_at(moves, at)
    return "\n".join([*_header(registry, moves), *map(line, moves)])


def history_command(at: str | None) -> str:
    """`epochline history [--at T]`: exit 2 for a bad --at or no registered model; 1 for
    --at on a registry with no move on record (or a store that fails)."""
    moment = parse_at(at) if at is not None else None  # before connecting: fail fast
    params = load_params()
    store.connect(params.tracking)
    registry = Registry(store.client(), params.tracking.registered_model_name)
    if not registry.exists():
        raise NoRegisteredModel(
            f"no registered model {registry.name!r} in {store.safe_uri(store.tracking_uri())}: "
            "`epochline retrain` registers one and promotes its champion"
        )
    return history(registry, moment)
