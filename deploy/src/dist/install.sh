#!/usr/bin/env bash
# Installs the Kaon of this directory (an unpacked kaon-<version>.tar.gz) as a node of a cluster:
#
#   PREFIX/opt/kaon/<version>/          this directory, as it is; versions sit side by side
#   PREFIX/opt/kaon/current             -> the version nodes run (`previous`: the one before)
#   PREFIX/opt/kaon/tasks/              task jars, shared by every version (each version's tasks/
#                                       links here), so that an upgrade keeps them
#   PREFIX/etc/kaon/kaon.conf           from conf/kaon.conf.template and the arguments; an
#                                       existing one is kept unless --force-config
#   PREFIX/var/lib/kaon, PREFIX/var/log/kaon   the node's state and logs
#   PREFIX/etc/systemd/system/kaon-node.service
#
# Running it again with the same arguments changes nothing. An upgrade is the new version's
# install.sh (arguments are only needed when there is no kaon.conf yet); --rollback switches
# `current` back to `previous`. The node runs the new version once it is restarted.
# PREFIX is / unless --prefix says otherwise (tests, or machines that each get their own root
# inside one host); only an install into / creates the kaon user and reloads systemd.
set -euo pipefail

USAGE="usage: install.sh --bind ADDRESS --discovery config:HOST,...|dns:NAME --cassandra HOST:PORT[,...] \
--token-file FILE [--cluster-name NAME] [--cassandra-dc DC] [--tls-cert FILE --tls-key FILE --tls-ca FILE] \
[--devices N] [--roles ROLE,...] [--prefix DIR] [--force-config] | install.sh --rollback [--prefix DIR]"

usage_error() {
  echo "install.sh: $*" >&2
  echo "$USAGE" >&2
  exit 2
}

say() { echo "install.sh: $*"; }

src="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)"

# --- Arguments: all checked before anything is changed ---------------------------------------

prefix=/ cluster_name=kaon bind="" discovery="" cassandra="" cassandra_dc=datacenter1 token_file=""
tls_cert="" tls_key="" tls_ca="" devices="" roles="" force_config=false rollback=false settings_given=false
while [ $# -gt 0 ]; do
  option="$1"
  case "$option" in
    --help|-h) echo "$USAGE"; exit 0 ;;
    --force-config) force_config=true; shift; continue ;;
    --rollback) rollback=true; shift; continue ;;
    --prefix|--cluster-name|--bind|--discovery|--cassandra|--cassandra-dc|--token-file|--tls-cert|--tls-key|--tls-ca|--devices|--roles)
      [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] || usage_error "$option needs a value"
      value="$2"; shift 2 ;;
    *) usage_error "unknown argument: $option" ;;
  esac
  # Values end up in HOCON strings and in the unit's command line: quotes, backslashes and
  # control characters would break out of either.
  case "$value" in *[\"\\]*|*[[:cntrl:]]*) usage_error "$option: quotes, backslashes and control characters are not allowed" ;; esac
  case "$option" in
    --prefix) prefix="$value"; continue ;;
    --cluster-name) cluster_name="$value" ;;
    --bind) bind="$value" ;;
    --discovery) discovery="$value" ;;
    --cassandra) cassandra="$value" ;;
    --cassandra-dc) cassandra_dc="$value" ;;
    --token-file) token_file="$value" ;;
    --tls-cert) tls_cert="$value" ;;
    --tls-key) tls_key="$value" ;;
    --tls-ca) tls_ca="$value" ;;
    --devices) devices="$value" ;;
    --roles) roles="$value" ;;
  esac
  settings_given=true
done

case "$prefix" in /*) ;; *) usage_error "--prefix must be an absolute path, was $prefix" ;; esac
# systemd splits ExecStart= on spaces; a plain path keeps the unit's one line true as written.
[[ "$prefix" =~ ^[A-Za-z0-9/._+-]+$ ]] || usage_error "--prefix may hold only letters, digits and / . _ + -"
root="$(readlink -m "$prefix")"
[ "$root" = / ] && root=""

version="$(cat "$src/VERSION" 2>/dev/null || true)"
[[ "$version" =~ ^[A-Za-z0-9._-]+$ ]] && [ -x "$src/bin/kaon" ] && [ -d "$src/lib" ] || {
  echo "install.sh: $src is not an unpacked Kaon distribution (VERSION, bin/kaon, lib/)" >&2
  exit 3
}

opt="$root/opt/kaon"
conf="$root/etc/kaon/kaon.conf"
unit="$root/etc/systemd/system/kaon-node.service"

if $rollback; then
  ! $settings_given && ! $force_config || usage_error "--rollback takes no other argument than --prefix"
fi

host='[A-Za-z0-9][A-Za-z0-9._:-]*'
[ -z "$bind" ] || [[ "$bind" =~ ^$host$ ]] || usage_error "--bind $bind is not an address"
[[ "$cluster_name" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] \
  || usage_error "--cluster-name may hold only letters, digits, - and _ (Pekko's rule for system names)"
hosts=()
case "$discovery" in
  "") ;;
  config:?*)
    IFS=, read -r -a hosts <<< "${discovery#config:}"
    for h in "${hosts[@]}"; do [[ "$h" =~ ^$host$ ]] || usage_error "--discovery: '$h' is not an address"; done ;;
  dns:?*)
    [[ "${discovery#dns:}" =~ ^[A-Za-z0-9][A-Za-z0-9.-]*$ ]] || usage_error "--discovery: '${discovery#dns:}' is not a DNS name" ;;
  *) usage_error "--discovery must be config:HOST,HOST,... or dns:NAME, was $discovery" ;;
esac
contact_points=()
if [ -n "$cassandra" ]; then
  IFS=, read -r -a contact_points <<< "$cassandra"
  for c in "${contact_points[@]}"; do
    [[ "$c" =~ ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*):([0-9]{1,5})$ ]] && [ "${BASH_REMATCH[2]}" -le 65535 ] \
      || usage_error "--cassandra: '$c' is not HOST:PORT"
  done
fi
[[ "$cassandra_dc" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage_error "--cassandra-dc $cassandra_dc is not a data center name"
# The node does not run where install.sh does: relative paths would mean something else to it.
for pair in "--token-file:$token_file" "--tls-cert:$tls_cert" "--tls-key:$tls_key" "--tls-ca:$tls_ca"; do
  path="${pair#*:}"
  [ -z "$path" ] || [ "${path#/}" != "$path" ] || usage_error "${pair%%:*} must be an absolute path, was $path"
done
if [ -n "$tls_cert$tls_key$tls_ca" ] && { [ -z "$tls_cert" ] || [ -z "$tls_key" ] || [ -z "$tls_ca" ]; }; then
  usage_error "--tls-cert, --tls-key and --tls-ca go together"
fi
[ -z "$devices" ] || [[ "$devices" =~ ^[1-9][0-9]{0,3}$ ]] || usage_error "--devices must be a positive number, was $devices"
role_list=()
if [ -n "$roles" ]; then
  IFS=, read -r -a role_list <<< "$roles"
  # Pekko accepts any role name, so a misspelt one would only show as a node that never trains.
  for r in "${role_list[@]}"; do
    case "$r" in gateway|worker|coordinator) ;; *) usage_error "--roles: '$r' is not one of gateway, worker, coordinator" ;; esac
  done
fi

write_config=false
if ! $rollback && { [ ! -e "$conf" ] || $force_config; }; then
  write_config=true
  [ -n "$bind" ] || usage_error "--bind is required to write $conf"
  [ -n "$discovery" ] || usage_error "--discovery is required to write $conf"
  [ -n "$cassandra" ] || usage_error "--cassandra is required to write $conf"
  [ -n "$token_file" ] || usage_error "--token-file is required to write $conf"
fi

# --- Rollback ------------------------------------------------------------------------------

# Replaces a symlink in one rename, so that nothing ever sees it missing.
switch_link() {
  local link="$1" target="$2"
  ln -sfn "$target" "$link.new.$$"
  mv -T "$link.new.$$" "$link"
}

if $rollback; then
  [ -L "$opt/current" ] || { echo "install.sh: nothing to roll back: no Kaon installed in $opt" >&2; exit 1; }
  previous="$(readlink "$opt/previous" 2>/dev/null || true)"
  [ -n "$previous" ] && [ -d "$opt/$previous" ] \
    || { echo "install.sh: nothing to roll back to: no previous version in $opt" >&2; exit 1; }
  current="$(readlink "$opt/current")"
  switch_link "$opt/current" "$previous"
  switch_link "$opt/previous" "$current"
  say "current is $previous again (was $current); restart the node to run it: systemctl restart kaon-node"
  exit 0
fi

# --- The kaon user -------------------------------------------------------------------------

have_user=false
if [ -z "$root" ] && [ "$(id -u)" = 0 ]; then
  if ! id kaon >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/kaon --no-create-home --shell /usr/sbin/nologin kaon
    say "created the system user kaon"
  fi
  have_user=true
else
  say "not creating the kaon user (only an install into / as root does); the unit names User=kaon"
fi

# --- The version ---------------------------------------------------------------------------

dest="$opt/$version"
mkdir -p "$opt/tasks"
[ -e "$opt/tasks/README" ] || cp "$src/tasks/README" "$opt/tasks/README"

# Copies this directory to $1, its tasks/ replaced by the shared one.
copy_version() {
  cp -a "$src" "$1"
  rm -rf "$1/tasks"
  ln -s ../tasks "$1/tasks"
}

if [ "$dest" = "$src" ]; then
  say "kaon $version is installed in $dest (this is that copy)"
elif [ -d "$dest" ]; then
  if diff -rq --no-dereference -x tasks "$src" "$dest" >/dev/null 2>&1; then
    say "kaon $version is already installed in $dest"
  else
    # A rebuilt version of the same number (a snapshot): replaced whole, by renames, so that
    # `current` never points at a half-copied directory.
    copy_version "$dest.new.$$"
    mv -T "$dest" "$dest.old.$$"
    mv -T "$dest.new.$$" "$dest"
    rm -rf "$dest.old.$$"
    say "replaced kaon $version in $dest (its files differed from these); a node running it must be restarted"
  fi
else
  copy_version "$dest.new.$$"
  mv -T "$dest.new.$$" "$dest"
  say "installed kaon $version in $dest"
fi

current="$(readlink "$opt/current" 2>/dev/null || true)"
if [ "$current" != "$version" ]; then
  [ -z "$current" ] || switch_link "$opt/previous" "$current"
  switch_link "$opt/current" "$version"
  if [ -n "$current" ]; then
    say "current is $version (was $current; install.sh --rollback switches back); restart the node to run it"
  else
    say "current is $version"
  fi
fi

# --- Directories and the configuration -----------------------------------------------------

mkdir -p "$root/etc/kaon" "$root/var/lib/kaon" "$root/var/log/kaon"
if $have_user; then
  chown kaon:kaon "$root/var/lib/kaon" "$root/var/log/kaon"
  chmod 750 "$root/var/lib/kaon" "$root/var/log/kaon"
fi

# A HOCON list of strings from its arguments.
hocon_list() {
  local out="" item
  for item in "$@"; do out="$out${out:+, }\"$item\""; done
  echo "[$out]"
}

if $write_config; then
  {
    cat "$src/conf/kaon.conf.template"
    echo
    echo "# --- Written by install.sh of kaon $version ---"
    echo "kaon.mode = \"vm\""
    echo "kaon.cluster.name = \"$cluster_name\""
    echo "kaon.cluster.bind-address = \"$bind\""
    if [ "${discovery%%:*}" = config ]; then
      echo "kaon.cluster.discovery { method = \"config\", hosts = $(hocon_list "${hosts[@]}") }"
    else
      echo "kaon.cluster.discovery { method = \"dns\", dns-name = \"${discovery#dns:}\" }"
    fi
    echo "kaon.cassandra.contact-points = $(hocon_list "${contact_points[@]}")"
    echo "kaon.cassandra.local-datacenter = \"$cassandra_dc\""
    echo "kaon.grpc.auth.token-file = \"$token_file\""
    if [ -n "$tls_cert" ]; then
      echo "kaon.cluster.tls { certificate = \"$tls_cert\", private-key = \"$tls_key\", ca = \"$tls_ca\" }"
    fi
    [ -z "$devices" ] || echo "kaon.node.cpu-slots = $devices"
    [ ${#role_list[@]} -eq 0 ] || echo "pekko.cluster.roles = $(hocon_list "${role_list[@]}")"
    echo "kaon.node.state-dir = \"${root:-}/var/lib/kaon\""
    echo "kaon.node.log-dir = \"${root:-}/var/log/kaon\""
  } > "$conf.new.$$"
  # It names the token file and may one day hold secrets: readable by the node's group only.
  chmod 640 "$conf.new.$$"
  ! $have_user || chgrp kaon "$conf.new.$$"
  if [ -e "$conf" ]; then
    cp -p "$conf" "$conf.bak"
    mv -T "$conf.new.$$" "$conf"
    say "rewrote $conf (--force-config); the old one is $conf.bak"
  else
    mv -T "$conf.new.$$" "$conf"
    say "wrote $conf"
  fi
else
  say "kept $conf as it is (--force-config rewrites it from the arguments)"
fi
for file in "$token_file" "$tls_cert" "$tls_key" "$tls_ca"; do
  [ -z "$file" ] || [ -e "$file" ] || say "note: $file does not exist yet; the node needs it to start"
done

# --- The systemd unit ----------------------------------------------------------------------

# The unit's paths, moved under the prefix; `|` cannot occur in a prefix (checked above).
mkdir -p "$(dirname "$unit")"
sed -e "s|/opt/kaon/|$root/opt/kaon/|g" -e "s|/etc/kaon/|$root/etc/kaon/|g" \
    -e "s|/var/lib/kaon|$root/var/lib/kaon|g" -e "s|/var/log/kaon|$root/var/log/kaon|g" \
    "$src/systemd/kaon-node.service" > "$unit.new.$$"
if cmp -s "$unit.new.$$" "$unit"; then
  rm "$unit.new.$$"
  say "$unit is up to date"
else
  chmod 644 "$unit.new.$$"
  mv -T "$unit.new.$$" "$unit"
  say "installed $unit"
  # Only the machine's own systemd, and only when it runs (not in a container or a chroot).
  if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
fi
if [ -z "$root" ]; then
  say "start the node with: systemctl enable --now kaon-node"
else
  say "start the node with: $(sed -n 's/^ExecStart=//p' "$unit")"
fi
