// The threshold catalog seen from a dashboard: signal queries with the board's variables,
// units, threshold steps from every rule of a signal, descriptions citing `guide § section`,
// runbook links and the guides' dashboard-only targets. A function of the mixin's _config
// (config.libsonnet, with the user's overrides), so a threshold overridden there (thresholds
// by rule id) moves the alert and the panel alike. alert_rules/ is reached through the
// jpath: the mixin is vendored as `saasmon` (jsonnet -J vendor), see docs/development.md.
local g = import 'grafana.libsonnet';
local fmt = import 'saasmon/alert_rules/mixin/format.libsonnet';

function(config) {
  cfg:: config,
  local cfg = self.cfg,
  local signals = cfg.catalog.signals,

  // Catalog unit -> Grafana unit (all on dashboard-linter's list of valid units).
  units:: {
    seconds: 's',
    ratio: 'percentunit',
    bytes: 'bytes',
    count: 'short',
    per_second: 'ops',
    score: 'short',
    sar: 'none',  // Grafana has no riyal unit; titles say SAR
    state: 'none',
  },

  signal(name):: if std.objectHas(signals, name) then signals[name] else error 'unknown signal ' + name,
  unit(name):: $.units[$.signal(name).unit],

  local severityRank = { low: 1, medium: 2, high: 3, critical: 4 },
  local rankColor = ['green', g.colors.low, g.colors.medium, g.colors.high, g.colors.critical],

  // Rules of a signal (every guide); `match` narrows to rules with exactly those matchers.
  // Escalation twins repeat their rule's threshold (later, one level up): no step of their own.
  rules(name, match=null):: [
    r
    for r in cfg.catalog.rules
    if r.signal == name && (match == null || r.match == match) && r.escalation_of == null
  ],
  value(rule):: cfg.thresholds[rule.id],

  local maxRank(rules) = std.foldl(function(m, r) std.max(m, severityRank[r.severity]), rules, 0),

  // Threshold steps of one or more signals (e.g. a traffic ratio with a drop and a surge
  // signal): each band is coloured by the highest severity whose rule fires in it (low blue,
  // medium yellow, high orange, critical red, none green); null when no rule exists.
  thresholds(names, match=null)::
    local list = if std.isArray(names) then names else [names];
    local rules = std.flattenArrays([$.rules(n, match) for n in list]);
    local above(r) = $.signal(r.signal).bad == 'above';
    // Grafana colours a value by the highest step at or below it, so a strict `> v` level
    // (and an inclusive `<= v` one) starts just past v: `> 0` leaves 0 itself green.
    local edge(r) =
      local v = $.value(r);
      if r.comparator == '>' || r.comparator == '<=' then v + 1e-9 * std.max(1, std.abs(v)) else v;
    local firing(x) = [r for r in rules if if above(r) then edge(r) <= x else edge(r) > x];
    local values = std.set([edge(r) for r in rules]);
    if rules == [] then null
    else g.thresholds(
      [{ color: rankColor[maxRank([r for r in rules if !above(r)])], value: null }] +
      [{ color: rankColor[maxRank(firing(v))], value: v } for v in values]
    ),

  threshold(value, unit):: fmt.threshold(value, unit),
  number(value):: fmt.number(value),

  local matchText(m) =
    if std.length(m) == 0 then ''
    else ' for ' + std.join(',', ['%s=%s' % [k, m[k]] for k in std.objectFields(m)]),

  // One line per rule: `guide § section: > 1 s (high)`.
  levelText(rule)::
    '%s: %s %s (%s)%s' % [
      rule.source, rule.comparator, fmt.threshold($.value(rule), $.signal(rule.signal).unit),
      rule.severity, matchText(rule.match),
    ],

  targets(name):: [t for t in cfg.catalog.targets if t.signal == name],
  target(id)::
    local found = [t for t in cfg.catalog.targets if t.id == id];
    if found == [] then error 'unknown catalog target ' + id else found[0],
  targetText(t):: 'target %s (%s, no alert)' % [fmt.threshold(t.value, t.unit), t.source],

  // Panel description: what the signal means, then every level and the given targets.
  description(name, match=null, targets=[], extra='')::
    local s = $.signal(name);
    local rules = $.rules(name, match);
    std.join(' ', std.filter(function(x) x != '', [
      s.meaning,
      extra,
      if rules == [] then '' else 'Levels: ' + std.join('; ', [$.levelText(r) for r in rules]) + '.',
      if targets == [] then '' else 'Targets: ' + std.join('; ', [
        '%s %s' % [t.measure, $.targetText(t)]
        for t in targets
      ]) + '.',
      'Alert: %s.' % s.alert,
    ])),

  runbook(name):: g.link('Runbook: ' + $.signal(name).alert, cfg.runbookURLPattern % $.signal(name).alert),

  local matcherText(m) = std.join(',', ['%s="%s"' % [k, m[k]] for k in std.objectFields(m)]),

  // The signal as PromQL for a board: its recording rule with the board's matchers, or its
  // expression with every `%(...Selector)s` replaced by them and 5m windows by
  // $__rate_interval. `matchers` is a list like ['job=~"$job"', 'instance=~"$instance"'].
  query(name, matchers, match={})::
    local s = $.signal(name);
    local extra = if std.length(match) == 0 then [] else [matcherText(match)];
    if std.objectHas(s, 'record') then '%s{%s}' % [s.record, std.join(',', matchers + extra)]
    else
      // Selectors become the board's matchers, 5m windows $__rate_interval; other
      // windows and offsets stay the rules' (config.libsonnet promqlParams).
      local params = cfg.promqlParams + {
        [k]: std.join(',', matchers + extra)
        for k in std.objectFields(cfg.selectors)
        if std.endsWith(k, 'Selector')
      } + { 'range:5m': '$__rate_interval' };
      std.stripChars(std.format(s.expr, params), ' \n'),
}
