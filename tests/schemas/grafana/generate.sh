#!/bin/sh
# Regenerates the JSON schemas in this folder from the TypeScript types that Grafana publishes in the npm package
# @grafana/schema (generated there from Grafana's CUE "kinds"). Run from this folder:
#   npm ci && npm run generate
set -eu
types=node_modules/@grafana/schema/dist/types/raw
generate() { # type file output
    npx ts-json-schema-generator --no-type-check --path "$types/$2" --type "$1" --out "$3"
}
generate Dashboard dashboard/x/types.gen.d.ts dashboard.schema.json
generate Options composable/stat/panelcfg/x/types.gen.d.ts stat-options.schema.json
generate Options composable/timeseries/panelcfg/x/types.gen.d.ts timeseries-options.schema.json
generate FieldConfig composable/timeseries/panelcfg/x/types.gen.d.ts timeseries-fieldconfig.schema.json
