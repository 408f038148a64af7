#!/usr/bin/env bash
# Installs the Bicep CLI into .tools/bicep/bicep from the NuGet package
# Azure.Bicep.CommandLine.linux-x64 (the same binary `az bicep` downloads), through the .NET SDK.
# Idempotent: does nothing when the wanted version is already there. Network: NuGet only.
#   BICEP_VERSION=0.49.2 scripts/install-bicep.sh
set -euo pipefail

VERSION="${BICEP_VERSION:-0.49.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.tools/bicep"
BIN="$DEST/bicep"

case "$(uname -m)" in
  x86_64) RID=linux-x64 ;;
  aarch64|arm64) RID=linux-arm64 ;;
  *) echo "install-bicep: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
PACKAGE="Azure.Bicep.CommandLine.$RID"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "install-bicep: Bicep CLI $VERSION already at $BIN"
  exit 0
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-bicep: the .NET SDK (dotnet) is needed to fetch $PACKAGE from NuGet; install it, or put a bicep binary on PATH (az bicep install)" >&2
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# A throwaway project whose only job is to make NuGet download the package (PackageDownload: no
# assets are resolved, the package is only put in the packages folder).
cat > "$WORK/fetch.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net$(dotnet --version | cut -d. -f1-2)</TargetFramework>
    <RestorePackagesPath>$WORK/packages</RestorePackagesPath>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="$PACKAGE" Version="[$VERSION]" />
  </ItemGroup>
</Project>
XML
echo "install-bicep: restoring $PACKAGE $VERSION from NuGet"
dotnet restore "$WORK/fetch.csproj" --nologo -v quiet >"$WORK/restore.log" 2>&1 || { cat "$WORK/restore.log" >&2; exit 1; }

FOUND="$(find "$WORK/packages" -type f -name bicep -path "*${PACKAGE,,}*" | head -n1)"
if [ -z "$FOUND" ]; then
  echo "install-bicep: no bicep binary inside $PACKAGE $VERSION" >&2
  exit 1
fi
mkdir -p "$DEST"
install -m 0755 "$FOUND" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
"$BIN" --version
echo "install-bicep: installed at $BIN"
