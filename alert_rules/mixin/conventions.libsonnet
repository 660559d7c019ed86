// The ecosystem conventions of _config (config.libsonnet: severityScheme, alertNamePrefix,
// extraLabels, clusterLabel, maxRulesPerGroup), applied where rules are rendered.
{
  // The severity label of a catalog severity (critical/high/medium/low, or none) in the
  // configured scheme; a mapped scheme also keeps the guides' level in its own label.
  severityLabels(cfg, severity)::
    local scheme = cfg.severitySchemes[cfg.severityScheme];
    { severity: scheme[severity] }
    + (if cfg.severityScheme == 'guides' then {} else { [cfg.guideSeverityLabel]: severity }),

  mappedSeverity(cfg, severity):: cfg.severitySchemes[cfg.severityScheme][severity],

  alertName(cfg, name):: cfg.alertNamePrefix + name,

  // Every `by (...)` and `on (...)` of a rendered expression also names the cluster label,
  // so no aggregation or vector match merges two clusters. The catalog states every
  // grouping (`count by () (...)`, never a bare `count(...)`); tests/unit/test_conventions.py
  // checks the rendered rules for any that escaped.
  clustered(cfg, expr)::
    if cfg.clusterLabel == '' then expr else
      local l = cfg.clusterLabel;
      local keep(text, word) =
        std.strReplace(std.strReplace(text, ' %s (' % word, ' %s (%s, ' % [word, l]),
                       ' %s (%s, )' % [word, l], ' %s (%s)' % [word, l]);
      keep(keep(expr, 'by'), 'on'),

  // Rules as groups of at most cfg.maxRulesPerGroup: rules with the same key(rule) stay
  // together (an alert's ladder, one window's records). A group that fits keeps its rules'
  // order and `name`; a split one becomes name-1, name-2, ... (before `suffix`), each
  // filled with whole units in the order of their first rule.
  groups(cfg, name, rules, key, suffix='')::
    local max = cfg.maxRulesPerGroup;
    local keys = std.foldl(function(acc, r) if std.member(acc, key(r)) then acc else acc + [key(r)], rules, []);
    local units = [[r for r in rules if key(r) == k] for k in keys];
    local chunks =
      if max == 0 || std.length(rules) <= max then [rules]
      else std.foldl(function(acc, unit)
        local n = std.length(acc);
        if std.length(unit) > max then
          error '%s: %d rules belong together (one alert ladder or window), more than maxRulesPerGroup %d'
                % [name, std.length(unit), max]
        else if n > 0 && std.length(acc[n - 1]) + std.length(unit) <= max then
          acc[:n - 1] + [acc[n - 1] + unit]
        else acc + [unit], units, []);
    [
      {
        name: (if std.length(chunks) == 1 then name else '%s-%d' % [name, i + 1]) + suffix,
        rules: chunks[i],
      }
      for i in std.range(0, std.length(chunks) - 1)
    ],
}
