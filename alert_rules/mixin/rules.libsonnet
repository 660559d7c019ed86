// Recording rules: one per signal that names a `record`, so alerts, dashboards and
// tests read the same precomputed series.
{
  local cfg = $._config,
  local signals = cfg.catalog.signals,
  local recorded = std.uniq(std.sort(
    [s for s in std.objectValues(signals) if std.objectHas(s, 'record')],
    function(s) s.record), function(s) s.record),

  prometheusRules+:: {
    groups+: [
      {
        name: 'saasmon-%s.rules' % area,
        rules: [
          { record: s.record, expr: std.format(s.expr, cfg.selectors) }
          for s in recorded
          if s.area == area
        ],
      }
      for area in std.set([s.area for s in recorded])
    ],
  },
}
