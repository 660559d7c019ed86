// Multiwindow, multi-burn-rate alerts for the availability objectives in slos.yaml.
local conv = import 'conventions.libsonnet';
local fmt = import 'format.libsonnet';

// The tiers are _config.burnRateWindows (config.libsonnet).
{
  local cfg = $._config,
  local slos = cfg.catalog.slos,
  // 5m is always recorded: the dashboards add its increases up over 30 days.
  local windows = std.set(['5m'] + std.flattenArrays([[w.long, w.short] for w in cfg.burnRateWindows])),
  local record(name, window) = 'slo:sli_error:ratio_rate%s' % window,
  local errorsRecord(window) = 'slo:sli_errors:increase%s' % window,
  local eventsRecord(window) = 'slo:sli_events:increase%s' % window,
  local severityOf(slo, i) =
    if slo.severities == null then cfg.burnRateWindows[i].severity else slo.severities[i],

  prometheusRules+:: {
    groups+: std.flattenArrays([
      // Errors and events per window, then their ratio: weighted by events, so an idle
      // window adds nothing (a mean of per-window ratios turned NaN on one 0/0). A window's
      // three records stay in one group.
      conv.groups(cfg, 'saasmon-slo-%s' % name, std.flattenArrays([
        [
          {
            record: errorsRecord(w),
            expr: conv.clustered(cfg, std.format(slos[name].errors, cfg.promqlParams { window: cfg.scaledDuration(w, true) })),
            labels: cfg.extraLabels + { slo: name },
            window:: w,
          },
          {
            record: eventsRecord(w),
            expr: conv.clustered(cfg, std.format(slos[name].events, cfg.promqlParams { window: cfg.scaledDuration(w, true) })),
            labels: cfg.extraLabels + { slo: name },
            window:: w,
          },
          {
            record: record(name, w),
            expr: '%s{slo="%s"} / %s{slo="%s"}' % [errorsRecord(w), name, eventsRecord(w), name],
            labels: cfg.extraLabels + { slo: name },
            window:: w,
          },
        ]
        for w in windows
      ]), function(r) r.window, '.rules')
      for name in std.objectFields(slos)
    ]),
  },

  // Burn-rate rules as data (see alerts.libsonnet ruleDescriptions): the three records an
  // alert compares and the numbers it compares them with.
  ruleDescriptions+:: [
    local slo = slos[name];
    local w = cfg.burnRateWindows[i];
    {
      id: 'slo:%s:%d' % [name, i],
      alert: conv.alertName(cfg, slo.alert),
      group: 'saasmon-slo-%s' % name,
      area: 'slo',
      severity: conv.mappedSeverity(cfg, severityOf(slo, i)),
      guide: slo.guide,
      slo: name,
      kind: 'burn_rate',
      labels: slo.labels,
      long: { series: record(name, w.long), window: cfg.scaledDuration(w.long, true) },
      short: { series: record(name, w.short), window: cfg.scaledDuration(w.short, true) },
      errors: { series: errorsRecord(w.long), window: cfg.scaledDuration(w.long, true) },
      threshold: std.parseJson(fmt.number(w.factor * (1 - slo.objective))),  // as rendered
      min_errors: slo.min_errors,
      'for': cfg.scaledDuration(w['for']),
    }
    for name in std.objectFields(slos)
    for i in std.range(0, std.length(cfg.burnRateWindows) - 1)
  ],

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'saasmon-slo-%s' % name,
        rules: [
          local slo = slos[name];
          local w = cfg.burnRateWindows[i];
          local budget = 1 - slo.objective;
          local threshold = fmt.number(w.factor * budget);
          {
            alert: conv.alertName(cfg, slo.alert),
            // The third clause: at least min_errors bad events in the long window.
            expr: '%s{slo="%s"} > %s\nand\n%s{slo="%s"} > %s\nand\n%s{slo="%s"} >= %s' % [
              record(name, w.long), name, threshold, record(name, w.short), name, threshold,
              errorsRecord(w.long), name, fmt.number(slo.min_errors),
            ],
            'for': cfg.scaledDuration(w['for']),
            labels: cfg.extraLabels + conv.severityLabels(cfg, severityOf(slo, i)) + {
              area: slo.area,
              guide: slo.guide,
              guide_level: 'availability target %s' % fmt.threshold(slo.objective, 'ratio'),
              long_window: w.long,
            },
            annotations: {
              summary: 'Error budget of the %s SLO (%s) is burning %gx too fast.' % [
                name, fmt.threshold(slo.objective, 'ratio'), w.factor],
              description: std.join(' ', ['%s={{ $labels.%s }}' % [l, l] for l in slo.labels]) +
                           ': errors over the last %s ({{ $value | humanizePercentage }} of events, at least %s of them) are %gx the budget of a %s objective; at this rate a 30-day budget lasts %s (%s).' % [
                w.long, fmt.number(slo.min_errors), w.factor, fmt.threshold(slo.objective, 'ratio'),
                fmt.threshold(30 * 86400 / w.factor, 'seconds'), std.join('; ', slo.sources)],
              runbook_url: cfg.runbookURLPattern % slo.alert,
            } + $.dashboardURL(cfg.dashboards.slo),
          }
          for i in std.range(0, std.length(cfg.burnRateWindows) - 1)
        ],
      }
      for name in std.objectFields(slos)
    ],
  },
}
