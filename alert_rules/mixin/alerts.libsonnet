// Alerts from the catalog: one rule per threshold level, grouped by area. A signal's
// levels from every guide share one alert name, so they form a severity ladder that
// Alertmanager's inhibition collapses to the highest firing level of each guide. A level
// several guides state is one rule whose `guide` label lists them all; a level with an
// escalation window also gets its twin (`escalated_from`), held for that much longer.
local conv = import 'conventions.libsonnet';
local fmt = import 'format.libsonnet';

{
  local cfg = $._config,
  local signals = cfg.catalog.signals,

  local selectorOf(rule) =
    std.join(',', ['%s="%s"' % [k, rule.match[k]] for k in std.objectFields(rule.match)]),

  local seriesOf(rule) =
    local s = signals[rule.signal];
    local base = if std.objectHas(s, 'record') then s.record else std.stripChars(std.format(s.expr, cfg.promqlParams), ' \n');
    if std.length(rule.match) == 0 then base
    else if std.objectHas(s, 'record') then '%s{%s}' % [base, selectorOf(rule)]
    else std.strReplace(base, '}', ',%s}' % selectorOf(rule)),

  // The board of the alert's area (config.libsonnet `dashboards`), unless switched off.
  dashboardURL(uid):: (if cfg.dashboardURLPattern == '' then {} else { dashboard_url: cfg.dashboardURLPattern % uid })
                      + (if cfg.logsURL == '' then {} else { logs_url: cfg.logsURL }),
  local dashboardURL = $.dashboardURL,

  local labelText(s) =
    std.join(' ', ['%s={{ $labels.%s }}' % [l, l] for l in s.labels]),

  local twin(rule) = rule.escalation_of != null,
  local thresholdOf(rule) = cfg.thresholds[if twin(rule) then rule.escalation_of else rule.id],

  local alertOf(rule) =
    local s = signals[rule.signal];
    local value = cfg.thresholds[if twin(rule) then rule.escalation_of else rule.id];
    {
      alert: conv.alertName(cfg, s.alert),
      expr: conv.clustered(cfg, '%s %s %s' % [seriesOf(rule), rule.comparator, fmt.number(value)]
            + (if std.objectHas(s, 'guard') then '\nand on (%s)\n%s %s %s' % [
              std.join(', ', s.labels), s.guard.record, s.guard.comparator,
              fmt.number(if std.objectHas(s.guard, 'value') then s.guard.value else value)] else '')),
      'for': cfg.scaledDuration(rule['for']),
      labels: cfg.extraLabels + conv.severityLabels(cfg, rule.severity) + {
        area: s.area,
        guide: rule.guide,
        guide_level: rule.guide_level,
      } + (if twin(rule) then {
             escalated_from: conv.mappedSeverity(cfg, rule.escalated_from),
             guide_level: '%s, escalated after %s' % [rule.guide_level, rule.escalation],
           } else {}),
      annotations: {
        summary: s.summary,
        description: '%s: %s is %s, %s the %s level %s (%s).' % [
          labelText(s),
          rule.measure,
          fmt.valueTemplate(s.unit),
          if rule.comparator == '>' || rule.comparator == '>=' then 'above' else 'below',
          rule.guide_level,
          fmt.threshold(value, s.unit),
          rule.source,
        ] + (if rule.action != '' then ' Action: %s' % rule.action else '')
        + (if twin(rule) then ' Escalated: the %s alert still fires %s after it fired.' % [
             rule.escalated_from, rule.escalation] else ''),
        runbook_url: cfg.runbookURLPattern % s.alert,
      } + dashboardURL(if std.objectHas(s, 'dashboard') then s.dashboard else cfg.dashboards[s.area]),
    },

  local areas = std.set([signals[r.signal].area for r in cfg.catalog.rules]),
  // Each area's catalog rules in groups of at most maxRulesPerGroup, ladders kept whole.
  local areaGroups = std.flattenArrays([
    [
      g { area: area }
      for g in conv.groups(cfg, 'saasmon-%s' % area,
                           [r for r in cfg.catalog.rules if signals[r.signal].area == area],
                           function(r) signals[r.signal].alert)
    ]
    for area in areas
  ]),

  // The series an alert compares with its threshold, as data: name and label matchers.
  local seriesSelectorOf(rule) =
    local s = signals[rule.signal];
    local fixed = if std.objectHas(s, 'record') then []
    else [{ label: l, op: cfg.selectorMatchers[s.series.selector][l][0], value: cfg.selectorMatchers[s.series.selector][l][1] }
          for l in std.objectFields(cfg.selectorMatchers[s.series.selector])] + s.series.matchers;
    {
      series: if std.objectHas(s, 'record') then s.record else s.series.metric,
      matchers: fixed + [{ label: k, op: '=', value: rule.match[k] } for k in std.objectFields(rule.match)],
    },

  // One structured description per alert rule, in the order of the alert file: what the
  // rule compares, with what, over which window and for how long. The promtool tests, the
  // behaviour suite and the runbooks read these instead of parsing rendered PromQL.
  ruleDescriptions+:: [
    local s = signals[r.signal];
    {
      id: r.id,
      alert: conv.alertName(cfg, s.alert),
      group: g.name,
      area: g.area,
      severity: conv.mappedSeverity(cfg, r.severity),
      guide: r.guide,
      guide_level: r.guide_level,
      signal: r.signal,
      kind: s.kind,
      unit: s.unit,
      window: if std.objectHas(s, 'window') then cfg.scaledDuration(s.window, true) else null,
      // The labels of the series, the cluster label first (every aggregation keeps it).
      labels: (if cfg.clusterLabel == '' then [] else [cfg.clusterLabel]) + s.labels,
      comparator: r.comparator,
      threshold: std.parseJson(fmt.number(thresholdOf(r))),  // as rendered
      escalation_of: r.escalation_of,
      'for': cfg.scaledDuration(r['for']),
      // A second series that must also pass the threshold (compared with its comparator).
      guard: if std.objectHas(s, 'guard') then {
        series: s.guard.record,
        comparator: s.guard.comparator,
        threshold: std.parseJson(fmt.number(if std.objectHas(s.guard, 'value') then s.guard.value else thresholdOf(r))),
      } else null,
    } + seriesSelectorOf(r)
    for g in areaGroups
    for r in g.rules
  ] + [{
    id: 'watchdog',
    alert: conv.alertName(cfg, 'Watchdog'),
    group: 'saasmon-meta',
    area: 'meta',
    severity: conv.mappedSeverity(cfg, 'none'),
    kind: 'always',
    'for': '0s',
  }],

  prometheusAlerts+:: {
    groups+: [
      { name: g.name, rules: [alertOf(r) for r in g.rules] }
      for g in areaGroups
    ] + [
      {
        name: 'saasmon-meta',
        rules: [{
          alert: conv.alertName(cfg, 'Watchdog'),
          expr: 'vector(1)',
          labels: cfg.extraLabels + conv.severityLabels(cfg, 'none') + { area: 'meta' },
          annotations: {
            summary: 'Always firing: proves that the alerting pipeline works end to end.',
            description: 'Prometheus evaluates rules and Alertmanager delivers them. The heartbeat receiver pages when this alert stops arriving.',
            runbook_url: cfg.runbookURLPattern % 'Watchdog',
          } + dashboardURL(cfg.dashboards.meta),
        }],
      },
    ],
  },
}
