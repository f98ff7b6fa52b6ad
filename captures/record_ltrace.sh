#!/bin/sh
# Record, with `dockit -t ltrace`:
# - captures/mariadb_select.ltrace.<pid>.log and .ini: Debian's `mariadb` client against the MariaDB
#   server on 127.0.0.1:3306 (root, no password, as set up here);
# - captures/ltrace_pipe.ltrace.<pid>.log and .ini: `sh -c 'printf "hello pipe\n" | cat > /dev/null'`, a
#   pipe whose 11 bytes show twice in the log (the library write and the system call inside it).
#
# A throwaway user and database `dockit_capture` are created with two small tables, four statements are
# run (the last one fails: unknown table), then both are dropped. The password goes through a defaults
# file, not the command line, so it is nowhere in the .ini; the login packet carries only its scramble.
# The program runs in an empty folder with a fixed environment, so paths and variables in the .ini are
# stable. tests/test_ltrace.py replays the committed log and checks the statements listed below.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=$(python3 -c "import sys; print(sys.executable)")  # the interpreter itself, not a shim
WORK=/tmp/dockit-captures/mariadb_select_ltrace
NAME=dockit_capture
PASSWORD="capture-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
STATEMENTS="SELECT title FROM books WHERE id <= 2 ORDER BY id; UPDATE books SET title = 'Dune Messiah' WHERE id = 2; SELECT COUNT(*) FROM books; SELECT * FROM no_such_table"

as_root() { mariadb -h 127.0.0.1 -u root -e "$1"; }
cleanup() { as_root "DROP USER IF EXISTS '$NAME'@'%'; DROP DATABASE IF EXISTS $NAME;" || true; }
trap cleanup EXIT

cleanup
as_root "CREATE DATABASE $NAME;
  CREATE TABLE $NAME.books (id INT PRIMARY KEY, title VARCHAR(64));
  INSERT INTO $NAME.books VALUES (1, 'Dune'), (2, 'Children of Dune'), (3, 'Hyperion');
  CREATE USER '$NAME'@'%' IDENTIFIED BY '$PASSWORD';
  GRANT ALL ON $NAME.* TO '$NAME'@'%';"

rm -rf "$WORK"
mkdir -p "$WORK"
printf '[client]\npassword=%s\n' "$PASSWORD" > "$WORK/../mariadb_select_ltrace.cnf"
chmod 600 "$WORK/../mariadb_select_ltrace.cnf"
rm -f "$HERE"/mariadb_select.ltrace.*
cd "$WORK"
status=0
env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
  "$PYTHON" -m dockit_core.cli -t ltrace -l "$HERE/mariadb_select" \
  mariadb --defaults-extra-file=../mariadb_select_ltrace.cnf -h 127.0.0.1 -u "$NAME" "$NAME" \
  -e "$STATEMENTS" > stdout.txt 2> stderr.txt || status=$?
rm -f "$WORK/../mariadb_select_ltrace.cnf"
# The client stops at the failing statement and exits 1.
[ "$status" -eq 1 ] || { echo "expected exit status 1, got $status" >&2; cat stderr.txt >&2; exit 1; }
grep -q 1146 stderr.txt
rm -f "$HERE"/mariadb_select.ltrace.*.txt "$HERE"/mariadb_select.ltrace.*.xml
ls -l "$HERE"/mariadb_select.ltrace.*

PIPE_WORK=/tmp/dockit-captures/ltrace_pipe
rm -rf "$PIPE_WORK" "$HERE"/ltrace_pipe.ltrace.*
mkdir -p "$PIPE_WORK"
cd "$PIPE_WORK"
env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
  "$PYTHON" -m dockit_core.cli -t ltrace -l "$HERE/ltrace_pipe" \
  sh -c 'printf "hello pipe\n" | cat > /dev/null' > stdout.txt 2> stderr.txt
rm -f "$HERE"/ltrace_pipe.ltrace.*.txt "$HERE"/ltrace_pipe.ltrace.*.xml
ls -l "$HERE"/ltrace_pipe.ltrace.*
