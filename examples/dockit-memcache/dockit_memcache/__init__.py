"""memcached's text protocol for dockit: one `Memcache_Command` per command, with its reply."""

from dockit_memcache.decoder import MemcacheDecoder

__all__ = ["MemcacheDecoder"]
