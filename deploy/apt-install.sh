#!/bin/sh
# Installs Debian packages, non-interactively, unless they are installed already.
#
#   deploy/apt-install.sh '<check>' <package>...
#
# <check> is a shell command that succeeds when the packages are installed, e.g.
# 'command -v redis-server' or 'test -f /usr/share/java/zookeeper.jar'.
#
# The packages' own services are never used: the tests start the servers as plain child
# processes on free ports. A policy-rc.d that exits 101 tells invoke-rc.d not to start services
# during the install, so a CI container without an init system installs cleanly; it is removed
# afterwards if this script created it.
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 '<check command>' <package>..." >&2
	exit 2
fi
check=$1
shift

if sh -c "$check" >/dev/null 2>&1; then
	echo "$*: installed"
	exit 0
fi
created=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created=1
fi
DEBIAN_FRONTEND=noninteractive apt-get update &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
status=$?
if [ -n "$created" ]; then rm -f /usr/sbin/policy-rc.d; fi
if [ $status -ne 0 ]; then
	exit $status
fi
# The packages may be installed and still not found, e.g. a server in /usr/sbin with /usr/sbin
# not on PATH: say so here rather than let the tests fail later asking for this very install.
if ! sh -c "$check" >/dev/null 2>&1; then
	echo "$0: $* installed, but '$check' still fails with PATH=$PATH (Debian puts servers in /usr/sbin)" >&2
	exit 1
fi
