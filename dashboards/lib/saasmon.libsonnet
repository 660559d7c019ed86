// Entry point for boards: dashboards.libsonnet calls this with the mixin's _config and
// hands the result to every board (`function(s) ...`): s.g is the primitives, s.c the
// catalog layer, s.cfg the _config and s.board(...) the builder that knows the board's
// variables (see dashboards/README.md).
local g = import 'grafana.libsonnet';

function(config)
local c = (import 'catalog.libsonnet')(config);
{
  g:: g,
  c:: c,
  cfg:: c.cfg,

  // uid: 'saasmon-<file name>'; area: the main catalog area (a tag); jobs: the mixin job
  // names the board reads (the `job` variable's default and option filter); instance: add an
  // `instance` variable (for boards whose series carry instances); allByDefault: preselect
  // All instead of `jobs` (boards over every job, like the overview).
  board(uid, title, area, jobs, instance=true, description='', tags=[], allByDefault=false):: {
    local board = self,
    uid:: uid,
    hasInstance:: instance,
    jobRegex:: std.join('|', jobs),

    // Matchers every selector of this board carries (boards.md: the cluster label and job
    // always, instance when the board has the variable and the series has the label).
    clusterMatchers:: if c.cfg.clusterLabel == '' then [] else ['%s=~"$cluster"' % c.cfg.clusterLabel],
    matchers(labels=['job', 'instance'])::
      board.clusterMatchers + ['job=~"$job"'] + (if instance && std.member(labels, 'instance') then ['instance=~"$instance"'] else []),
    sel(labels=['job', 'instance']):: std.join(',', board.matchers(labels)),

    // The PromQL of a catalog signal on this board (see catalog.libsonnet query()).
    query(name, match={}):: c.query(name, board.matchers(c.signal(name).labels), match),

    // A panel of a catalog signal: query, unit, threshold steps of all its rules (ladder
    // colours), description with meaning + `guide § section: level (severity)` lines, a
    // runbook link, and the given catalog targets (ids) as dashed constant series.
    //   type: timeseries | stat | bargauge | table | state-timeline (with `mappings`)
    //   query: replaces the signal's own query (e.g. a per-route view of the same measure)
    //   legend: legendFormat (default: the signal's labels other than job)
    //   match: label matchers narrowing the series and the rules (e.g. {cron_job: 'x'})
    //   also: further signals measured by the same query (their levels join the steps)
    //   extraTargets: more g.target()s drawn on the panel (raw views next to the signal)
    signal(name, title, type='timeseries', w=8, h=8, query=null, legend=null, unit=null,
           match={}, targets=[], description='', extraTargets=[], also=[], mappings=[])::
      local s = c.signal(name);
      local q = if query != null then query else board.query(name, match);
      local labels = [l for l in s.labels if l != 'job' && l != 'instance'];
      local defaultLegend =
        if labels != [] then std.join(' ', ['{{%s}}' % l for l in labels])
        else if std.member(s.labels, 'instance') then '{{instance}}'
        else '{{job}}';
      local u = if unit != null then unit else c.unit(name);
      local th = c.thresholds([name] + also, if match == {} then null else match);
      local tgts = [c.target(id) for id in targets];
      local desc = std.join(' ', [c.description(name, if match == {} then null else match, tgts, description)]
                                 + [c.description(n) for n in also]);
      local main = g.target(q, if legend != null then legend else defaultLegend);
      local lines = [
        g.target('%s + 0 * max(%s)' % [c.number(t.value), q], c.targetText(t))
        for t in tgts
      ];
      local panel =
        if type == 'timeseries' then
          g.timeseries(title, desc, [main] + lines + extraTargets, u, w, h, th)
          + g.withOverrides([g.dashedSeries(c.targetText(t)) for t in tgts])
        else if type == 'stat' then g.stat(title, desc, [main] + extraTargets, u, w, h, th)
        else if type == 'bargauge' then g.bargauge(title, desc, [main] + extraTargets, u, w, h, th)
        else if type == 'state-timeline' then
          g.stateTimeline(title, desc, [main] + extraTargets, u, w, h, mappings, th)
        else if type == 'table' then
          g.table(title, desc, [g.tableTarget(q, main.legendFormat)] + extraTargets, u, w, h, thresholds=th)
        else error 'signal panel type ' + type;
      panel + g.withLinks([c.runbook(n) for n in [name] + also]),

    // A panel of a dashboard-only catalog target (no alert): `query` is the target's own
    // measure (e.g. a 7-day average); green while it meets the target, red when it does not
    // (direction from the target's signal).
    targetStat(id, title, query, legend, w=6, h=4)::
      local t = c.target(id);
      local s = c.signal(t.signal);
      local steps =
        if s.bad == 'above' then [{ color: 'green', value: null }, { color: 'red', value: t.value }]
        else [{ color: 'red', value: null }, { color: 'green', value: t.value }];
      g.stat(title, '%s: %s. %s' % [t.measure, c.targetText(t), s.meaning], [g.target(query, legend)],
             c.units[t.unit], w, h, g.thresholds(steps))
      + g.withLinks([c.runbook(t.signal)]),

    // The finished dashboard: variables, tags, layout (ids, gridPos) and board links.
    dashboard(panels, links=[]):: g.dashboard(
      uid=uid,
      title='SaaSmon / ' + title,
      tags=std.uniq(std.sort(['saasmon', area] + tags)),
      description=description,
      // The cluster (mixin clusterLabel): one at a time, or All, which also matches series
      // without the label (a single-cluster setup has none).
      variables=(if c.cfg.clusterLabel == '' then [] else [
                   g.queryVariable('cluster', 'Cluster', 'label_values(up{job=~"%s"}, %s)' % [
                     board.jobRegex, c.cfg.clusterLabel]) { multi: false, allValue: '.*', current: { selected: true, text: 'All', value: '$__all' } },
                 ]) + [
        g.queryVariable('job', 'Job', 'label_values(up{%s}, job)' % std.join(',', board.clusterMatchers + ['job=~"%s"' % board.jobRegex]),
                        if allByDefault then [] else jobs),
      ] + (if instance then [
             g.queryVariable('instance', 'Instance', 'label_values(up{%s}, instance)' % board.sel(['job'])),
           ] else []),
      panels=panels,
      links=links,
    ),
  },
}
