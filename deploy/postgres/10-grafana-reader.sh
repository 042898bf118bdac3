#!/bin/sh
# Run by the postgres image once, when it creates the database: a role for Grafana that can
# only read. Tables and views that the poller's migrations create later (as the owner,
# $POSTGRES_USER) are readable by it through the default privileges. That includes
# oauth_tokens, which holds OAuth tokens: with OAuth portals, revoke it after the first start:
#   docker compose exec postgres psql -U timeman -c 'REVOKE SELECT ON oauth_tokens FROM grafana_reader'
set -eu
psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$POSTGRES_USER" -v dbname="$POSTGRES_DB" -v password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'password';
GRANT CONNECT ON DATABASE :"dbname" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
SQL
