"""The test run's throwaway Redis: the same child process ``ivr dev`` uses."""

from __future__ import annotations

from ivr.embedded_redis import RedisProcess, free_port, redis_binary, running_redis

__all__ = ["RedisProcess", "free_port", "redis_binary", "running_redis"]
