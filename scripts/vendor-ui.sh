#!/usr/bin/env bash
# Refreshes the web UI's vendored JavaScript (src/daglake/ui/static/vendor/) from the npm
# registry. Run by hand when upgrading; installing daglake never runs it (no CDN, no build step).
# Usage: scripts/vendor-ui.sh [CYTOSCAPE_VERSION] [CYTOSCAPE_DAGRE_VERSION] [DAGRE_VERSION]
set -euo pipefail

cytoscape=${1:-3.34.4}
cytoscape_dagre=${2:-4.0.1}
dagre=${3:-3.1.3}  # only for its LICENSE: cytoscape-dagre bundles @dagrejs/dagre 3.x

vendor="$(cd "$(dirname "$0")/.." && pwd)/src/daglake/ui/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "cytoscape@$cytoscape" "cytoscape-dagre@$cytoscape_dagre" "@dagrejs/dagre@$dagre" > /dev/null
for tarball in *.tgz; do
    mkdir "${tarball%.tgz}"
    tar xzf "$tarball" -C "${tarball%.tgz}"
done
cp "cytoscape-$cytoscape/package/dist/cytoscape.esm.min.mjs" "$vendor/"
cp "cytoscape-$cytoscape/package/LICENSE" "$vendor/LICENSE.cytoscape"
cp "cytoscape-dagre-$cytoscape_dagre/package/dist/cytoscape-dagre.min.mjs" "$vendor/"
cp "cytoscape-dagre-$cytoscape_dagre/package/LICENSE" "$vendor/LICENSE.cytoscape-dagre"
cp "dagrejs-dagre-$dagre/package/LICENSE" "$vendor/LICENSE.dagre"
(cd "$vendor" && sha256sum cytoscape.esm.min.mjs cytoscape-dagre.min.mjs)
