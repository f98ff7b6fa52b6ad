"""The summary: its CIM objects, the `-s` filters, and the XML and TXT writers."""
