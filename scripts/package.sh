#!/usr/bin/env bash
# Builds the packages a DBA installs without Rust, for one PostgreSQL major version:
#
#   target/packages/postgresql-NN-pg-rfm_VERSION_amd64.deb   Debian/Ubuntu (PostgreSQL from
#       Debian's or the PGDG packages): the library, control file, install script, every
#       earlier install script and upgrade script, README; Depends: postgresql-NN
#   target/packages/pg_rfm-VERSION-pgNN-linux-amd64.tar.gz   any other server: lib/,
#       extension/ and an install.sh that copies them where that server's pg_config says
#
#   scripts/package.sh                         # for the system PostgreSQL 15
#   scripts/package.sh --pg-config PATH        # for the PostgreSQL of that pg_config
#
# Prints the paths of the two files. The build is a release build (cargo pgrx package).
source "$(dirname "$0")/lib.sh"

while [ $# -gt 0 ]; do
    case "$1" in
        --pg-config) PG_CONFIG=${2:?--pg-config needs a path}; shift ;;
        --pg-config=*) PG_CONFIG=${1#--pg-config=} ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "scripts/package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$PG_CONFIG" ] || { echo "scripts/package.sh: no pg_config at $PG_CONFIG" >&2; exit 2; }
PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
case "$PG_MAJOR" in
    15|16|17|18) ;;
    *) echo "scripts/package.sh: PostgreSQL $PG_MAJOR is not supported (15 to 18)" >&2; exit 2 ;;
esac
[ "$(uname -m)" = x86_64 ] || { echo "scripts/package.sh: packages are built for amd64 (x86_64) only" >&2; exit 2; }

ensure_debs " to build packages" binutils
version=$(extension_version)
outdir="$ROOT/target/packages"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

log "packaging pg_rfm $version for PostgreSQL $PG_MAJOR ($PG_CONFIG)"
step_hint "'cargo pgrx package $(pgrx_features) --pg-config $PG_CONFIG' failed (its messages are above); run it by hand to reproduce"
(cd "$ROOT" && cargo pgrx package $(pgrx_features) --pg-config "$PG_CONFIG" --out-dir "$stage/pgrx" \
    > >(grep -vE '^\s+(Compiling|Checking)' >&2 || true) 2>&1)
lib="$stage/pgrx$("$PG_CONFIG" --pkglibdir)/pg_rfm.so"
ext="$stage/pgrx$("$PG_CONFIG" --sharedir)/extension"
[ -f "$lib" ] && [ -f "$ext/pg_rfm.control" ] && [ -f "$ext/pg_rfm--$version.sql" ] \
    || { echo "scripts/package.sh: cargo pgrx package did not produce the library, control file and install script" >&2; exit 1; }
add_version_scripts "$ext"
mkdir -p "$outdir"

# --- the Debian package: Debian's layout for PostgreSQL NN, whatever pg_config built it.
name="postgresql-$PG_MAJOR-pg-rfm"
deb="$stage/deb"
mkdir -p "$deb/DEBIAN" "$deb/usr/lib/postgresql/$PG_MAJOR/lib" "$deb/usr/share/postgresql/$PG_MAJOR/extension" \
    "$deb/usr/share/doc/$name"
install -m 644 "$lib" "$deb/usr/lib/postgresql/$PG_MAJOR/lib/pg_rfm.so"
install -m 644 "$ext"/pg_rfm.control "$ext"/pg_rfm--*.sql "$deb/usr/share/postgresql/$PG_MAJOR/extension/"
install -m 644 "$ROOT/README.md" "$ROOT/CHANGELOG.md" "$deb/usr/share/doc/$name/"
cat >"$deb/usr/share/doc/$name/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: pg_rfm
Files: *
License: PostgreSQL
EOF
# The newest glibc symbol version the library needs is the libc6 it depends on.
glibc=$(objdump -T "$lib" | sed -nE 's/.*GLIBC_([0-9]+\.[0-9]+).*/\1/p' | sort -uV | tail -n1)
cat >"$deb/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: amd64
Maintainer: pg_rfm developers <pg_rfm@localhost>
Depends: postgresql-$PG_MAJOR, libc6 (>= ${glibc:-2.17}), libgcc-s1
Section: database
Priority: optional
Installed-Size: $(du -sk "$deb/usr" | cut -f1)
Description: customer segmentation inside PostgreSQL $PG_MAJOR (pg_rfm)
 RFM aggregates, exact IQR bounds, KMeans models stored in tables, segment
 assignment inside any query, and customer lifetime value (BG/NBD and
 Gamma-Gamma). Install with CREATE EXTENSION pg_rfm; earlier versions upgrade
 with ALTER EXTENSION pg_rfm UPDATE.
EOF
(cd "$deb" && find usr -type f -exec md5sum {} + >DEBIAN/md5sums)
debfile="$outdir/${name}_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$deb" "$debfile" >/dev/null

# --- the tarball: lib/, extension/, install.sh.
top="pg_rfm-$version-pg$PG_MAJOR-linux-amd64"
tar_root="$stage/tar/$top"
mkdir -p "$tar_root/lib" "$tar_root/extension"
install -m 644 "$lib" "$tar_root/lib/pg_rfm.so"
install -m 644 "$ext"/pg_rfm.control "$ext"/pg_rfm--*.sql "$tar_root/extension/"
install -m 644 "$ROOT/README.md" "$ROOT/CHANGELOG.md" "$tar_root/"
cat >"$tar_root/install.sh" <<EOF
#!/bin/sh
# Installs pg_rfm $version into a PostgreSQL $PG_MAJOR server: lib/pg_rfm.so into pg_config's
# --pkglibdir, extension/* into its --sharedir/extension. Run as a user who may write there.
#   ./install.sh                      # the pg_config first on PATH
#   ./install.sh --pg-config PATH     # another server's
set -eu
cd "\$(dirname "\$0")"
PG_CONFIG=pg_config
[ "\${1:-}" = --pg-config ] && PG_CONFIG=\${2:?--pg-config needs a path}
major=\$("\$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\\1/')
if [ "\$major" != $PG_MAJOR ]; then
    echo "install.sh: this package is for PostgreSQL $PG_MAJOR; \$PG_CONFIG is PostgreSQL \$major" >&2
    exit 1
fi
lib=\$("\$PG_CONFIG" --pkglibdir)
ext=\$("\$PG_CONFIG" --sharedir)/extension
install -m 755 lib/pg_rfm.so "\$lib/pg_rfm.so"
install -m 644 extension/* "\$ext/"
echo "pg_rfm $version installed into \$lib and \$ext; now: CREATE EXTENSION pg_rfm; (or ALTER EXTENSION pg_rfm UPDATE;)"
EOF
chmod 755 "$tar_root/install.sh"
tarfile="$outdir/$top.tar.gz"
tar -C "$stage/tar" --owner=0 --group=0 -czf "$tarfile" "$top"

echo "$debfile"
echo "$tarfile"
