#!/usr/bin/env sh
# Writes the dev overlay's secret env files (gitignored) with random, URL-safe credentials, so that
# DATABASE_URL agrees with POSTGRES_PASSWORD and MinIO's root user is the S3 key pair.
# Existing files are kept: delete them to rotate (and delete the PostgreSQL volume, which keeps the old password).
set -eu
cd "$(dirname "$0")"
random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
write() { # file, contents
  if [ -e "$1" ]; then echo "kept $1"; else umask 077; printf '%s\n' "$2" > "$1"; echo "wrote $1"; fi
}
pg_password=$(random)
write database.env "POSTGRES_USER=streamline
POSTGRES_PASSWORD=$pg_password
POSTGRES_DB=streamline
DATABASE_URL=postgres://streamline:$pg_password@postgres:5432/streamline"
write s3.env "AWS_ACCESS_KEY_ID=streamline-dev
AWS_SECRET_ACCESS_KEY=$(random)"
write worker-token.env "STREAMLINE_WORKER_TOKEN=$(random)
STREAMLINE_WORKER_TOKENS="
write admin-token.env "STREAMLINE_ADMIN_TOKEN=$(random)"
