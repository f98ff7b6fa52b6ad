"""The query digest (docs/digest.md): what a run's statements, commands and requests add up to.

- `fingerprint`: SQL, Redis and HTTP fingerprints (values out, shape kept).
- `sketch`: a bounded quantile sketch for p50 and p95.
- `digest`: records in, one entry per fingerprint out, with its flags; `Dockit_QueryDigest` objects.
- `render`: the digest as text for a person and as JSON.
- `inputs`: records read back from XML summaries and logs, for `dockit report`.
"""
