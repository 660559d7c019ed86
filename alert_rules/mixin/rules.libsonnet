// Recording rules: one per signal that names a `record`, so alerts, dashboards and
// tests read the same precomputed series.
local conv = import 'conventions.libsonnet';

{
  local cfg = $._config,
  local signals = cfg.catalog.signals,
  // A signal's record and its guard's record (with the signal's area).
  local recorded = std.uniq(std.sort(
    [s for s in std.objectValues(signals) if std.objectHas(s, 'record')]
    + [s.guard { area: s.area } for s in std.objectValues(signals) if std.objectHas(s, 'guard')],
    function(s) s.record), function(s) s.record),

  // Series for dashboards that no alert reads directly.
  local extra = {
    api: [
      { record: 'job:http_requests:per_minute_rate5m', expr: 'job:http_requests:rate5m * 60' },
    ],
    database: [
      {
        record: 'instance:pg_connections:ratio_max',
        expr: std.format(|||
          sum by (job, instance) (pg_connections{%(postgresSelector)s})
          / on (job, instance) max by (job, instance) (pg_settings_max_connections{%(postgresSelector)s})
        |||, cfg.selectors),
      },
    ],
  },

  // The configured conventions on a recording rule: cluster label kept, extra labels.
  local conventional(rule) =
    rule { expr: conv.clustered(cfg, rule.expr) }
    + (if cfg.extraLabels == {} then {} else { labels: cfg.extraLabels + std.get(rule, 'labels', {}) }),

  prometheusRules+:: {
    groups+: std.flattenArrays([
      conv.groups(cfg, 'saasmon-%s' % area, [
        conventional(r)
        for r in [
          { record: s.record, expr: std.format(s.expr, cfg.promqlParams) }
          for s in recorded
          if s.area == area
        ] + (if std.objectHas(extra, area) then extra[area] else [])
      ], function(r) r.record, '.rules')
      for area in std.set([s.area for s in recorded])
    ]),
  },
}
