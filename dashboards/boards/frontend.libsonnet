// Frontend Web Vitals: real-user p75 per metric (the guides' statistic), by route, and the
// good / needs-improvement / poor shares the receiver rates server-side.
function(s)
local g = s.g;

local b = s.board('saasmon-frontend', 'Frontend Web Vitals', 'frontend', [s.cfg.jobs.webvitals],
                  description='Web Vitals of real users (sendBeacon receiver): p75 per metric and route, rating shares.');
local sel = b.sel();

// [signal, short name, histogram metric, unit, extra matchers of its p75]. Load metrics
// leave back/forward-cache restores out of p75, as their alerts do (signals.yaml says why).
local noBfcache = ',navigation_type!="back-forward-cache"';
local vitals = [
  ['webvitals_lcp', 'LCP', 'webvitals_lcp_seconds', 's', noBfcache],
  ['webvitals_inp', 'INP', 'webvitals_inp_seconds', 's', ''],
  ['webvitals_cls', 'CLS', 'webvitals_cls', 'short', ''],
  ['webvitals_fcp', 'FCP', 'webvitals_fcp_seconds', 's', noBfcache],
  ['webvitals_ttfb', 'TTFB', 'webvitals_ttfb_seconds', 's', noBfcache],
  ['webvitals_fid', 'FID', 'webvitals_fid_seconds', 's', ''],
];

local p75ByRoute(metric, extra) =
  'histogram_quantile(0.75, sum by (route, le) (rate(%s_bucket{%s%s}[$__rate_interval])))' % [metric, sel, extra];
local ratingShare(metric) =
  'sum by (rating) (rate(%(m)s_count{%(s)s}[$__rate_interval])) / scalar(sum(rate(%(m)s_count{%(s)s}[$__rate_interval])))' % { m: metric, s: sel };
local ratingColors = g.withOverrides([
  { matcher: { id: 'byName', options: r[0] }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: r[1] } }] }
  for r in [['good', 'green'], ['needs-improvement', 'yellow'], ['poor', 'red']]
]);

b.dashboard(
  [g.row('p75 now (15 min window)')]
  + [b.signal(v[0], v[1] + ' p75', type='stat', w=4, h=4) for v in vitals]
  + [g.row('p75 over time against every guide level')]
  + [b.signal(v[0], v[1] + ' p75', w=8) for v in vitals]
  + [g.row('By route')]
  + [b.signal(v[0], v[1] + ' p75 by route', w=8, query=p75ByRoute(v[2], v[4]), legend='{{route}}',
              description='Per normalized route, over $__rate_interval (the alert uses 15 min).')
     for v in vitals]
  + [g.row('Rating shares (good / needs improvement / poor, rated by the receiver)')]
  + [g.timeseries(v[1] + ' ratings', 'Share of %s reports rated good, needs-improvement and poor at the guides\' good/poor edges.' % v[1],
                  [g.target(ratingShare(v[2]), '{{rating}}')], 'percentunit', w=8, stack=true)
     + g.withMinMax(0, 1) + ratingColors
     for v in vitals]
  + [
    g.row('Receiver'),
    g.timeseries('Reports accepted', 'Metric reports recorded into the histograms, per second.',
                 [g.target('sum by (job) (rate(webvitals_beacons_accepted_total{%s}[$__rate_interval]))' % sel, 'accepted')],
                 'ops', w=8),
    g.timeseries('Beacons rejected by reason', 'Rejected beacons per second by reason (origin, content type, size, rate limits, invalid JSON).',
                 [g.target('sum by (reason) (rate(webvitals_beacons_rejected_total{%s}[$__rate_interval]))' % sel, '{{reason}}')],
                 'ops', w=8),
    g.timeseries('Reports per metric', 'Reports per second per Web Vital (sample size behind each p75).',
                 [g.target('sum(rate(%s_count{%s}[$__rate_interval]))' % [v[2], sel], v[1]) for v in vitals],
                 'ops', w=8),
    g.timeseries('Page views by navigation type', 'FCP reports per second by how the page was reached (web-vitals navigationType): navigate, reload, back-forward, back-forward-cache (restored from memory, left out of the load metrics\' p75), prerender, restore, other.',
                 [g.target('sum by (navigation_type) (rate(webvitals_fcp_seconds_count{%s}[$__rate_interval]))' % sel, '{{navigation_type}}')],
                 'ops', w=8),
  ]
)
