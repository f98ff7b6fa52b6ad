#!/usr/bin/env bash
# Set up dockit on a fresh Debian/Ubuntu machine, then trace an example program.
#   ./setup.sh            install the tracers and dockit (with its test extras), run the example
#   ./setup.sh --no-example
set -euo pipefail
cd "$(dirname "$0")"

need=()
for tool in strace ltrace gcc curl wget openssl pkg-config forkstat; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
# psql, pg_dump and pgbench for the PostgreSQL tests (tshark, below, is their independent check).
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# The headers of the MariaDB client library: the tests build a C client and Python's MySQLdb on it.
dpkg -s libmariadb-dev >/dev/null 2>&1 || need+=(libmariadb-dev)
# memcached: the example memcached decoder's tests start their own server on a port of their own.
command -v memcached >/dev/null 2>&1 || need+=(memcached)
# tshark (and editcap): the independent check (Wireshark's dissectors), the captures the pcap bridges are
# checked against and that decoders.testing replays; gopacket's package ships public sample captures
# (its tests'), read by tests/test_pcap_in.py.
command -v tshark >/dev/null 2>&1 || need+=(tshark)
dpkg -s golang-github-google-gopacket-dev >/dev/null 2>&1 || need+=(golang-github-google-gopacket-dev)
# The broker tests: Mosquitto's own clients (mosquitto_pub, mosquitto_sub).
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
# The HTTP/2 and DNS tests: nghttp (an HTTP/2 client with server push), dig, and unshare and ip for the
# network namespace where glibc's resolver is pointed at the tests' own DNS server.
command -v nghttp >/dev/null 2>&1 || need+=(nghttp2-client)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# gnutls-cli: the GnuTLS client the TLS tests trace with ltrace (tests/test_tls_live.py); mariadb-server:
# the private TLS MariaDB those tests start on a port and data folder of their own.
command -v gnutls-cli >/dev/null 2>&1 || need+=(gnutls-bin)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
# chromium: the --serve page is tested in a real browser (driven by playwright, from the test extras).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# pt-fingerprint and pt-query-digest: the query digest's fingerprints are checked against theirs
# (tests/test_digest_fingerprint.py).
command -v pt-fingerprint >/dev/null 2>&1 || need+=(percona-toolkit)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${need[*]}"
    $sudo apt-get update -qq
    # noninteractive: tshark's package asks whether non-root users may capture (the default, no, is fine)
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The distribution is dockit-trace (the PyPI name `dockit` is an unrelated project). An editable install
# of this checkout made under the old name "dockit" would shadow it: it goes first.
if python3 -m pip show dockit 2>/dev/null | grep -qx "Editable project location: $PWD"; then
    python3 -m pip uninstall -q -y dockit
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
# MySQLdb (a client that links libmariadb) for the ltrace tests; optional for dockit itself.
python3 -c 'import MySQLdb' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check mysqlclient \
    || echo "setup: mysqlclient could not be installed; the tests that need it will be skipped"

if [ "${1:-}" != "--no-example" ]; then
    out=$(mktemp -d)
    echo "setup: tracing an example: sh -c 'ls / | wc -l'"
    dockit -l "$out/example" sh -c 'ls / | wc -l'
    echo "setup: the summary is $(ls "$out"/example.strace.*.xml)"
fi
