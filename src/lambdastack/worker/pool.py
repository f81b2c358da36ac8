"""The environments of one function version: idle ones ready for reuse, busy ones working."""

from __future__ import annotations

from lambdastack.worker.environment import Environment, State


class Pool:
    def __init__(self, key: str) -> None:
        self.key = key
        self.members: set[Environment] = set()
        self._idle: list[Environment] = []  # most recently used last: reuse the warmest
        self.retired = False

    @property
    def empty(self) -> bool:
        return not self.members

    def add(self, env: Environment) -> None:
        self.members.add(env)

    def take_idle(self) -> Environment | None:
        while self._idle:
            env = self._idle.pop()
            if env.state is State.IDLE and env.death is None:
                env.state = State.BUSY
                return env
            self.discard(env)
        return None

    def is_idle(self, env: Environment) -> bool:
        return env.state is State.IDLE and env in self.members

    def release(self, env: Environment) -> None:
        if self.retired or env.death is not None:
            env.kill("retired")
            self.discard(env)
            return
        env.state = State.IDLE
        self._idle.append(env)

    def discard(self, env: Environment) -> None:
        self.members.discard(env)
        if env in self._idle:
            self._idle.remove(env)
        if env.state is not State.DEAD:
            env.kill("discarded")

    def reap(self, idle_before: float) -> None:
        for env in [e for e in self._idle if e.last_used < idle_before]:
            self.discard(env)

    def retire(self) -> None:
        """No more reuse: idle environments go now, busy ones when they finish."""
        self.retired = True
        for env in list(self._idle):
            self.discard(env)

    def close(self) -> None:
        self.retired = True
        for env in list(self.members):
            self.discard(env)
