// Business / Executive: users, revenue, growth and satisfaction KPIs from the business
// exporter's default pack (exporters/business/default_pack.yaml). Every business signal of
// the catalog has a panel here, with the levels of every guide as threshold steps.
function(s)
local g = s.g;
local jobs = s.cfg.jobs;

local b = s.board('saasmon-business', 'Business / Executive', 'business', [jobs.business],
                  tags=['executive'],
                  description='Product KPIs of the launch guides: users, revenue, growth, satisfaction.');
local sel = b.sel();

b.dashboard([
  g.row('Now'),
  b.signal('business_dau', 'Daily active users', type='stat', w=4, h=4),
  b.signal('business_mau', 'Monthly active users', type='stat', w=4, h=4),
  b.signal('business_mrr', 'MRR (SAR)', type='stat', w=4, h=4),
  b.signal('business_churn', 'Monthly churn', type='stat', w=4, h=4),
  b.signal('business_conversion', 'Sign-up to paid (30 d)', type='stat', w=4, h=4),
  b.signal('business_nps', 'NPS (average 0-10)', type='stat', w=4, h=4),

  g.row('Users and engagement'),
  b.signal('business_dau', 'Daily active users (24 h)', w=8),
  b.signal('business_mau', 'Monthly active users (30 d)', w=8),
  g.timeseries('DAU / MAU (stickiness)',
               'Daily over monthly active users: the share of the month\'s users that came back today. No guide states a level.',
               [g.target('business_daily_active_users{%(s)s} / business_monthly_active_users{%(s)s}' % { s: sel },
                         '{{instance}}')], 'percentunit', w=8),
  b.signal('business_session_duration', 'Average session duration', w=8),
  b.signal('business_actions_per_session', 'Actions per session', w=8),
  b.signal('business_task_completion', 'Task completion', w=8),
  b.signal('business_retention_d7', 'Day-7 retention', w=12),
  b.signal('business_retention_d30', 'Day-30 retention', w=12),

  g.row('Revenue'),
  b.signal('business_mrr', 'MRR (SAR)', w=8),
  b.signal('business_ltv', 'LTV (SAR)', w=8),
  g.timeseries('Active subscriptions',
               'Subscriptions started and not cancelled at query time (the base of MRR and churn). No guide states a level.',
               [g.target('business_subscriptions_active{%s}' % sel, '{{instance}}')], 'short', w=8),
  b.signal('business_churn', 'Monthly churn', w=12),
  b.signal('business_conversion', 'Sign-up to paid conversion (30 d)', w=12),

  g.row('Growth'),
  b.signal('business_customers_created', 'Customers created (24 h)', w=12),
  b.signal('business_properties_created', 'Properties created (24 h)', w=12),

  g.row('Satisfaction and adoption'),
  b.signal('business_nps', 'NPS (average 0-10 answer, 30 d)', w=8),
  g.timeseries('Net promoter score (promoters - detractors)',
               'Classic NPS as a ratio from -1 to 1 over the NPS answers of the last 30 days: answers 9-10 minus answers 0-6, over all answers. The guide\'s level is on the average answer (panel to the left).',
               [g.target('business_net_promoter_score{%s}' % sel, '{{instance}}')], 'percentunit', w=8),
  b.signal('business_user_satisfaction', 'User satisfaction (CSAT, 30 d)', w=8),
  b.signal('business_adoption', 'Estimate library adoption (30 d)', w=8),
  b.signal('business_estimate_time_reduction', 'Estimate creation time saved by the library', w=8),
  b.signal('business_estimate_accuracy_improvement', 'Estimate error reduced by the library', w=8),
])
