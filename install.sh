#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine. Safe to run twice.
#   bash install.sh               # system packages, PostgreSQL role+database, .venv, .env
#   bash install.sh --no-postgres # skip PostgreSQL: SQLite under DATA_DIR is the store
#   bash install.sh --dev         # also the test tools (.[dev]), Debian's chromium for the browser
#                                 # tests and a PostgreSQL test database (URL in .env.test, 0600)
#   bash install.sh --local-llm   # also build the offline LLM (llama.cpp server, ~7 min)
#   bash install.sh --service     # also run `kmg run` as the systemd service kmg-autotrader
#                                 # (restart on failure, after PostgreSQL, logs in journald)
#   bash install.sh --service --dry-run  # only show the unit and the systemctl commands; with
#                                 # DESTDIR=dir write the unit under dir/etc/systemd/system
set -euo pipefail

cd "$(dirname "$0")"
WITH_POSTGRES=1
WITH_DEV=0
WITH_SERVICE=0
DRY_RUN=0
EXTRAS=""
for arg in "$@"; do
  case "$arg" in
    --no-postgres) WITH_POSTGRES=0 ;;
    --dev) EXTRAS="${EXTRAS:+$EXTRAS,}dev"; WITH_DEV=1 ;;
    --local-llm) EXTRAS="${EXTRAS:+$EXTRAS,}local-llm" ;;
    --service) WITH_SERVICE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$DRY_RUN" -eq 1 ] && [ "$WITH_SERVICE" -eq 0 ]; then
  echo "install.sh: --dry-run only applies to --service" >&2; exit 2
fi
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

UNIT_NAME=kmg-autotrader.service
# the unit from its template: this checkout, the user who ran install.sh (not root via sudo)
render_unit() {
  local checkout run_user pg=""
  checkout="$(pwd -P)"
  checkout="${checkout//%/%%}"  # systemd reads % as a specifier
  run_user="${KMG_SERVICE_USER:-${SUDO_USER:-$(id -un)}}"
  [ "$WITH_POSTGRES" -eq 1 ] && pg=" postgresql.service"
  sed -e "s#@CHECKOUT_URL@#${checkout// /%%20}#g" -e "s#@CHECKOUT@#${checkout}#g" \
      -e "s#@USER@#${run_user}#g" \
      -e "s#@WANTS_POSTGRES@#${pg}#g" -e "s#@AFTER_POSTGRES@#${pg}#g" \
      scripts/systemd/kmg-autotrader.service.in
}
install_service() {
  local unit_dir="${DESTDIR:-}/etc/systemd/system"
  if [ "$DRY_RUN" -eq 1 ] && [ -z "${DESTDIR:-}" ]; then
    say "would write $unit_dir/$UNIT_NAME:"
    render_unit
  else
    say "writing $unit_dir/$UNIT_NAME"
    if [ -n "${DESTDIR:-}" ]; then mkdir -p "$unit_dir"; render_unit > "$unit_dir/$UNIT_NAME"
    else render_unit | $SUDO tee "$unit_dir/$UNIT_NAME" >/dev/null; $SUDO chmod 644 "$unit_dir/$UNIT_NAME"; fi
  fi
  if [ "$DRY_RUN" -eq 0 ] && [ -z "${DESTDIR:-}" ] && [ -d /run/systemd/system ]; then
    $SUDO systemctl daemon-reload
    $SUDO systemctl enable --now kmg-autotrader
    say "kmg-autotrader is running: systemctl status kmg-autotrader; journalctl -u kmg-autotrader -f"
  else
    say "to start it (systemd): sudo systemctl daemon-reload && sudo systemctl enable --now kmg-autotrader"
    say "logs: journalctl -u kmg-autotrader -f; stop: sudo systemctl stop kmg-autotrader"
  fi
}
if [ "$DRY_RUN" -eq 1 ]; then  # nothing else: no packages, no database, no .venv
  install_service
  exit 0
fi

PACKAGES="python3 python3-venv python3-pip git build-essential"
[ "$WITH_POSTGRES" -eq 1 ] && PACKAGES="$PACKAGES postgresql"
[ "$WITH_DEV" -eq 1 ] && PACKAGES="$PACKAGES chromium"
if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    say "installing system packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  else
    say "system packages already installed"
  fi
else
  echo "install.sh: apt-get not found; install $PACKAGES yourself" >&2
fi

if [ "$WITH_POSTGRES" -eq 1 ]; then
  if ! pg_isready -q 2>/dev/null; then
    say "starting PostgreSQL"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -1)" main start \
      || $SUDO service postgresql start || true
  fi
  as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$*"; else sudo -u postgres $*; fi; }
  say "creating PostgreSQL role kmg_user and database kmg_autotrader (if absent)"
  if [ "$(as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='kmg_user'\"")" != "1" ]; then
    PGPASS="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
    as_postgres "psql -qc \"CREATE ROLE kmg_user LOGIN PASSWORD '$PGPASS'\""
    NEW_PG_URL="postgresql://kmg_user:${PGPASS}@localhost/kmg_autotrader"
  fi
  if [ "$(as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='kmg_autotrader'\"")" != "1" ]; then
    as_postgres "psql -qc \"CREATE DATABASE kmg_autotrader OWNER kmg_user\""
  fi
  if [ "$WITH_DEV" -eq 1 ] && [ ! -f .env.test ]; then
    # the test suite's own role and database, so tests never touch the bot's data
    say "creating PostgreSQL role and database kmg_test for the test suite"
    TESTPASS="$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
    if [ "$(as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='kmg_test'\"")" = "1" ]; then
      as_postgres "psql -qc \"ALTER ROLE kmg_test LOGIN PASSWORD '$TESTPASS'\""
    else
      as_postgres "psql -qc \"CREATE ROLE kmg_test LOGIN PASSWORD '$TESTPASS'\""
    fi
    if [ "$(as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='kmg_test'\"")" != "1" ]; then
      as_postgres "psql -qc \"CREATE DATABASE kmg_test OWNER kmg_test\""
    else
      as_postgres "psql -qc \"ALTER DATABASE kmg_test OWNER TO kmg_test\""
    fi
    # the suite drops and recreates the public schema between runs: it must own it
    as_postgres "psql -d kmg_test -qc \"ALTER SCHEMA public OWNER TO kmg_test\""
    (umask 077; echo "KMG_TEST_POSTGRES_URL=postgresql+psycopg://kmg_test:${TESTPASS}@127.0.0.1:5432/kmg_test" > .env.test)
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
say "installing kmg-autotrader into .venv (about 2 minutes; pip shows what it fetches)"
.venv/bin/pip install -q --upgrade pip
# pip's own progress (each package, download bars): two silent minutes look like a hang
if [ -n "$EXTRAS" ]; then .venv/bin/pip install -e ".[$EXTRAS]"; else .venv/bin/pip install -e .; fi
# an editable install leaves our own sources uncompiled, and where PYTHONDONTWRITEBYTECODE is
# set nothing ever writes their bytecode: every start would compile them again (~50 ms of each
# `kmg` process). Python ignores a .pyc whose source changed since, so this is only a cache.
.venv/bin/python -m compileall -q src

if [ ! -f .env ]; then
  say "creating .env from .env.example"
  cp .env.example .env
  chmod 600 .env
fi
if [ -n "${NEW_PG_URL:-}" ]; then
  # a new role's password is only known now: put it in .env (0600) rather than print it
  if grep -q '^POSTGRES_URL=$' .env; then
    sed -i "s#^POSTGRES_URL=\$#POSTGRES_URL=${NEW_PG_URL}#" .env
    say "POSTGRES_URL written to .env (PostgreSQL is now the store)"
  else
    echo "note: .env already sets POSTGRES_URL; the new kmg_user password was not written" >&2
  fi
fi

.venv/bin/kmg db upgrade >/dev/null && say "database migrated"
[ "$WITH_SERVICE" -eq 1 ] && install_service

cat <<'MSG'

KMG Autotrader is installed (PAPER mode; nothing can trade real money until you opt in).
Next steps:
  .venv/bin/kmg demo          # replay bundled candles through the bot, dashboard at http://127.0.0.1:8000
  .venv/bin/kmg config check  # see the effective settings (secrets masked)
  edit .env                   # symbols, exchange, LLM key, alerts
  .venv/bin/kmg run           # run the bot (PAPER)
MSG
