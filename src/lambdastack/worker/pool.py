"""The environments of one function version: idle ones ready for reuse, busy ones working.

Some of them may be provisioned (provisioned concurrency): initialized ahead of demand,
taken first, never reaped for idleness nor evicted for memory, and replaced when they die.
"""

from __future__ import annotations

from lambdastack.worker.environment import Environment, State


class Pool:
    def __init__(self, key: str) -> None:
        self.key = key
        self.members: set[Environment] = set()
        self._idle: list[Environment] = []  # most recently used last: reuse the warmest
        self.retired = False
        self.provisioned_target = 0  # environments to keep provisioned
        self.provisioning_error: str | None = None  # why provisioning last failed, if it did

    @property
    def empty(self) -> bool:
        return not self.members

    @property
    def provisioned(self) -> list[Environment]:
        return [env for env in self.members if env.provisioned and env.state is not State.DEAD]

    def add(self, env: Environment) -> None:
        self.members.add(env)

    def take_idle(self) -> Environment | None:
        """The warmest idle environment, provisioned ones first."""
        for provisioned_only in (True, False):
            for i in range(len(self._idle) - 1, -1, -1):
                env = self._idle[i]
                if provisioned_only and not env.provisioned:
                    continue
                del self._idle[i]
                if env.state is State.IDLE and env.death is None:
                    env.state = State.BUSY
                    return env
                self.discard(env)
                return self.take_idle()
        return None

    def idle(self, evictable_only: bool = False) -> list[Environment]:
        return [env for env in self._idle if not (evictable_only and env.provisioned)]

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

    def reap(self, idle_before: float) -> list[Environment]:
        """Environments idle since before `idle_before` (provisioned ones stay); they leave the pool."""
        gone = [e for e in self._idle if e.last_used < idle_before and not e.provisioned]
        for env in gone:
            self._idle.remove(env)
            self.members.discard(env)
        return gone

    def retire(self) -> None:
        """No more reuse: idle environments go now, busy ones when they finish."""
        self.retired = True
        self.provisioned_target = 0
        for env in list(self._idle):
            self.discard(env)

    def close(self) -> None:
        self.retired = True
        for env in list(self.members):
            self.discard(env)
