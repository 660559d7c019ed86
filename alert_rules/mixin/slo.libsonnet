// Multiwindow, multi-burn-rate alerts for the availability objectives in slos.yaml.
local fmt = import 'format.libsonnet';

{
  _config+:: {
    // [severity, long window, short window, burn-rate factor]; the page/ticket split.
    burnRateWindows: [
      { severity: 'critical', long: '1h', short: '5m', factor: 14.4, 'for': '2m' },
      { severity: 'critical', long: '6h', short: '30m', factor: 6, 'for': '15m' },
      { severity: 'medium', long: '1d', short: '2h', factor: 3, 'for': '1h' },
      { severity: 'medium', long: '3d', short: '6h', factor: 1, 'for': '3h' },
    ],
  },

  local cfg = $._config,
  local slos = cfg.catalog.slos,
  local windows = std.set(std.flattenArrays([[w.long, w.short] for w in cfg.burnRateWindows])),
  local record(name, window) = 'slo:sli_error:ratio_rate%s' % window,

  prometheusRules+:: {
    groups+: [
      {
        name: 'saasmon-slo-%s.rules' % name,
        rules: [
          {
            record: record(name, w),
            expr: std.format(slos[name].error_ratio, cfg.selectors { window: w }),
            labels: { slo: name },
          }
          for w in windows
        ],
      }
      for name in std.objectFields(slos)
    ],
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'saasmon-slo-%s' % name,
        rules: [
          local slo = slos[name];
          local budget = 1 - slo.objective;
          local threshold = std.format('%.12g', w.factor * budget);
          {
            alert: slo.alert,
            expr: '%s{slo="%s"} > %s\nand\n%s{slo="%s"} > %s' % [
              record(name, w.long), name, threshold, record(name, w.short), name, threshold,
            ],
            'for': fmt.scaleDuration(w['for'], cfg.timeScale),
            labels: {
              severity: w.severity,
              area: slo.area,
              guide: slo.guide,
              guide_level: 'availability target %s' % fmt.threshold(slo.objective, 'ratio'),
              long_window: w.long,
            },
            annotations: {
              summary: 'Error budget of the %s SLO (%s) is burning %gx too fast.' % [
                name, fmt.threshold(slo.objective, 'ratio'), w.factor],
              description: std.join(' ', ['%s={{ $labels.%s }}' % [l, l] for l in slo.labels]) +
                           ': errors over the last %s are %gx the budget of a %s objective; at this rate a 30-day budget lasts %s (%s).' % [
                w.long, w.factor, fmt.threshold(slo.objective, 'ratio'),
                fmt.threshold(30 * 86400 / w.factor, 'seconds'), std.join('; ', slo.sources)],
              runbook_url: cfg.runbookURLPattern % slo.alert,
            } + $.dashboardURL(cfg.dashboards.slo),
          }
          for w in cfg.burnRateWindows
        ],
      }
      for name in std.objectFields(slos)
    ],
  },
}
