"""Stage 4 of the pipeline: what a run writes. The only code that knows XML, CSV, JSON or Dockerfiles.

- `summary/`: the CIM objects of the summary (`objects`), the `-s` filters (`filter`), and the XML and
  TXT writers (`writers`).
- `digest/`: the query digest, statements grouped by fingerprint (`fingerprint`, `sketch`, `digest`,
  `render`, `inputs`).
- `calls/`: the calls file, calls aggregated into logical blocks (`blocks`, `blocks_writer`) or one
  record per call (`each_call_writer`).
- `docker/`: the Dockerfile and its build context (`dockerfile`), and which package owns each file
  (`packages`).
- `ini`: the .ini written beside a log so it can be replayed; `redaction`: secrets out of command
  lines, environments and buffers; `atomic`: outputs written to a temporary file, then renamed;
  `xmltext`: text made safe for XML.
"""
