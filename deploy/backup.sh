#!/usr/bin/env bash
# Nightly database backup with retention. Cron, as the wizamart user:
#   15 3 * * * /srv/wizamart/app/deploy/backup.sh
# DATABASE_URL comes from the environment or /etc/wizamart/env. BACKUP_DIR (default
# /srv/wizamart/backups) and BACKUP_KEEP_DAYS (default 14) tune it.
set -euo pipefail

if [ -z "${DATABASE_URL:-}" ] && [ -r /etc/wizamart/env ]; then
    DATABASE_URL=$(grep -E '^DATABASE_URL=' /etc/wizamart/env | tail -1 | cut -d= -f2-)
fi
: "${DATABASE_URL:?DATABASE_URL is not set}"
BACKUP_DIR=${BACKUP_DIR:-/srv/wizamart/backups}
BACKUP_KEEP_DAYS=${BACKUP_KEEP_DAYS:-14}

umask 077
mkdir -p "$BACKUP_DIR"
target="$BACKUP_DIR/wizamart-$(date -u +%Y%m%dT%H%M%SZ).dump"

# Custom format: compressed, restorable table by table with pg_restore.
pg_dump --format=custom --no-owner --no-privileges --file="$target.partial" "$DATABASE_URL"
mv "$target.partial" "$target"
pg_restore --list "$target" >/dev/null   # an unreadable dump fails the job, not the restore

find "$BACKUP_DIR" -maxdepth 1 -name 'wizamart-*.dump' -type f -mtime "+$BACKUP_KEEP_DAYS" -print -delete
find "$BACKUP_DIR" -maxdepth 1 -name 'wizamart-*.dump.partial' -type f -mmin +720 -delete
echo "backup written: $target ($(du -h "$target" | cut -f1))"
