#!/usr/bin/env bash
# Copies the Apache Kafka broker jars (and a log4j2 backend) from Maven Central
# into .cache/kafka/<version>/libs, where kafka/kafkatest looks for them.
# Does nothing when that directory is already complete.
set -euo pipefail

version="${KAFKA_VERSION:-4.1.1}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
dest="$root/.cache/kafka/$version/libs"

if [[ -f "$dest/.complete" ]]; then
  exit 0
fi
# Maven fetches the jars; the broker runs them on Java. Debian's packages, as for the servers.
"$root/deploy/apt-install.sh" 'command -v mvn && command -v java' maven default-jre-headless

# Copy into a temporary directory first so an interrupted run never leaves a
# half-filled libs directory that looks usable.
tmp="$(mktemp -d "$root/.cache/kafka-fetch.XXXXXX" 2>/dev/null || { mkdir -p "$root/.cache" && mktemp -d "$root/.cache/kafka-fetch.XXXXXX"; })"
trap 'rm -rf "$tmp"' EXIT
mvn -q -B -Dstyle.color=never -f "$here/broker/pom.xml" -Dkafka.version="$version" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs"
ls "$tmp/libs/kafka_2.13-$version.jar" >/dev/null
touch "$tmp/libs/.complete"
mkdir -p "$(dirname "$dest")"
rm -rf "$dest"
mv "$tmp/libs" "$dest"
echo "fetch-kafka: Kafka $version jars in $dest"
