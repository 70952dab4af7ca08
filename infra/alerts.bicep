// On-call alerts: an action group (email, optional webhook) and Azure Monitor log alert rules over
// the app's Application Insights. Each event rule selects the handler's operator events by name
// (internal/event; infra/alerts_test.go ties every name here to a constant the code defines and
// emits); two more watch the Functions host's own errors and HTTP 5xx answers. What each alert
// means and what to do: docs/deploy.md, "On call: alerts and runbook".
//
// How the handler's records reach Application Insights: a custom handler's stdout and stderr lines
// are logged by the Functions host under the category Host.Function.Console, one trace per line,
// the line itself as the message (Azure/azure-functions-host, WorkerProcess.cs and
// WorkerConstants.FunctionConsoleLogCategoryName; learn.microsoft.com/azure/azure-functions/
// functions-custom-handlers#trace-logging). The handler writes one JSON object per line (log/slog),
// so the rules parse the message with parse_json; severityLevel is the host's guess from words in
// the line, so the rules never rely on it for the handler's records.
//
// Every rule sets skipQueryValidation: ARM validates a rule's query against its Application
// Insights component, which this same deployment may have created seconds earlier and whose
// tables may not answer yet; the queries are checked as text by infra/alerts_test.go instead.
//
// The number of rules, their frequencies and the monthly cost in docs/deploy.md are compared with
// this file by infra/alerts_test.go (TestAlertCountAndCostMatchDocs).

@description('Azure region of the alert rules.')
param location string

@description('Tags for every resource.')
param tags object

@description('Suffix that makes the names unique.')
param resourceToken string

@description('Resource id of the Application Insights component the rules query (app.bicep).')
param applicationInsightsId string

@description('Email address that receives the alerts. Empty: no email receiver.')
param alertEmail string = ''

@secure()
@description('HTTPS webhook (Teams, Slack, PagerDuty...) that receives the alerts in the common alert schema. Empty: none. Secure: such URLs often carry a token.')
param alertWebhookUrl string = ''

@description('Thresholds and windows, overriding the defaults below key by key, e.g. {"http5xxCount": 20, "dbSlowCalls": 100}.')
param thresholds object = {}

// Defaults: counts are "more than N in the window"; windows are ISO 8601 durations.
var defaults = {
  itemFailedCount: 0
  conflictCount: 0
  runFailedCount: 0
  outboxStaleCount: 0
  relayBacklogCount: 2
  dbSlowCalls: 50
  hostErrorCount: 5
  invocationFailureCount: 10
  http5xxCount: 10
  nightlyMissingHours: 26
  // Most rules run every 15 minutes (the cheapest frequency); the three that mean an outage or a
  // restore run every 5.
  window: 'PT15M'
  frequency: 'PT15M'
  fastWindow: 'PT5M'
  fastFrequency: 'PT5M'
}
var t = union(defaults, thresholds)

var emailReceivers = empty(alertEmail) ? [] : [
  {
    name: 'on-call-email'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]
var webhookReceivers = empty(alertWebhookUrl) ? [] : [
  {
    name: 'on-call-webhook'
    serviceUri: alertWebhookUrl
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-dualsync-${resourceToken}'
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'dualsync'
    enabled: true
    emailReceivers: emailReceivers
    webhookReceivers: webhookReceivers
  }
}

// The handler's records: one JSON object per trace of Host.Function.Console. The text before the
// first { (none in Azure; devhost prefixes its console copy) is skipped.
var handlerEvents = 'traces | where tostring(customDimensions.Category) == "Host.Function.Console" | where message contains "\\"event\\"" | extend e = parse_json(substring(message, indexof(message, "{"))) | extend event = tostring(e.event)'

// One rule per event that needs a person. Severity: 0 critical, 1 error, 2 warning, 3 informational.
// filter narrows the event's records; measure (optional) sums a column instead of counting rows.
var eventRules = [
  {
    name: 'item-failed'
    event: 'item_failed'
    severity: 2
    description: 'An item failed sync after the queue\'s retries: the two databases differ on it until someone acts.'
    filter: ''
    measure: ''
    threshold: t.itemFailedCount
    window: t.window
    frequency: t.frequency
  }
  {
    name: 'conflict-recorded'
    event: 'conflict_recorded'
    severity: 3
    description: 'Both databases changed an item concurrently (or two users claim one email): the merge is recorded for review.'
    filter: ''
    measure: ''
    threshold: t.conflictCount
    window: 'PT1H'
    frequency: 'PT15M'
  }
  {
    name: 'database-regressed'
    event: 'database_regressed'
    severity: 1
    description: 'A database went back in time (restored from a backup, rebuilt): sync merges what it lost back and a repair run follows; check the restore.'
    filter: ''
    measure: ''
    threshold: 0
    window: t.fastWindow
    frequency: t.fastFrequency
  }
  {
    name: 'clock-ahead'
    event: 'clock_ahead'
    severity: 3
    description: 'A row was changed at a time more than a minute ahead of a syncing instance clock: a fast clock makes its writes win field merges.'
    filter: ''
    measure: ''
    threshold: 0
    window: 'PT1H'
    frequency: 'PT15M'
  }
  {
    name: 'breaker-opened'
    event: 'breaker_opened'
    severity: 1
    description: 'The primary database stopped answering: the API serves from the fallback.'
    filter: ''
    measure: ''
    threshold: 0
    window: t.fastWindow
    frequency: t.fastFrequency
  }
  {
    name: 'run-failed'
    event: 'run_failed'
    severity: 2
    description: 'A sync run failed: it did not look at every item.'
    filter: ''
    measure: ''
    threshold: t.runFailedCount
    window: t.window
    frequency: t.frequency
  }
  {
    name: 'run-planned-one-side'
    event: 'run_planned_one_side'
    severity: 3
    description: 'A sync run was planned while one database was down: items only that database holds were not in it.'
    filter: ''
    measure: ''
    threshold: 0
    window: 'PT1H'
    frequency: 'PT15M'
  }
  {
    name: 'nightly-run-unclean'
    event: 'nightly_run_finished'
    severity: 2
    description: 'The nightly run failed or ended with failed or conflicting items.'
    filter: '| where tostring(e.status) != "Completed" or toint(e.counts.failed) > 0 or toint(e.counts.conflict) > 0'
    measure: ''
    threshold: 0
    window: 'PT1H'
    frequency: 'PT15M'
  }
  {
    name: 'outbox-stale'
    event: 'outbox_stale'
    severity: 2
    description: 'Changes have waited in a database\'s outbox longer than OUTBOX_STALE_AFTER: they are not reaching the other database.'
    filter: ''
    measure: ''
    threshold: t.outboxStaleCount
    window: t.window
    frequency: t.frequency
  }
  {
    name: 'relay-backlog'
    event: 'relay_backlog'
    severity: 3
    description: 'OutboxRelay keeps carrying RELAY_BACKLOG_ITEMS or more items per run: the after-commit publisher or sync is falling behind.'
    filter: ''
    measure: ''
    threshold: t.relayBacklogCount
    window: t.window
    frequency: t.frequency
  }
  {
    name: 'db-call-slow'
    event: 'db_call_slow'
    severity: 3
    description: 'Database calls are slower than DB_SLOW_CALL: look at the database\'s load and tier.'
    filter: '| extend slowCalls = toint(e.slowCalls)'
    measure: 'slowCalls'
    threshold: t.dbSlowCalls
    window: t.window
    frequency: t.frequency
  }
]

resource eventAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for r in eventRules: {
  name: 'alert-dualsync-${r.name}-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dualsync: ${r.name}'
    description: r.description
    severity: r.severity
    enabled: true
    skipQueryValidation: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: r.frequency
    windowSize: r.window
    criteria: {
      allOf: [
        {
          query: '${handlerEvents} | where event == "${r.event}" ${r.filter}'
          timeAggregation: empty(r.measure) ? 'Count' : 'Total'
          metricMeasureColumn: empty(r.measure) ? null : r.measure
          operator: 'GreaterThan'
          threshold: r.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

// No nightly run has finished for a day and more: the timer did not fire, or the run is stuck.
// A new environment has had no nightly run yet: while the app's first trace in the window (P2D,
// longer than nightlyMissingHours) is younger than nightlyMissingHours, appYoung adds one row and
// the rule stays quiet. An app that logs nothing at all gets no row from it, so it still fires.
var appYoung = 'traces | summarize firstSeen = min(timestamp) | where firstSeen > ago(${t.nightlyMissingHours}h)'

resource nightlyMissing 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-dualsync-nightly-missing-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dualsync: nightly-missing'
    description: 'No nightly run has finished in the last ${t.nightlyMissingHours} hours.'
    severity: 2
    enabled: true
    skipQueryValidation: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: 'union (${handlerEvents} | where event == "nightly_run_finished" | where timestamp > ago(${t.nightlyMissingHours}h)), (${appYoung})'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// The Functions host's own errors (a handler that does not start or exits, a binding or listener
// that fails) and exceptions; the handler's records are left to the rules above, and a function's
// failed invocations (category Function.<Name>: a queue message that will be retried, a timer run)
// to invocation-failures below: their outcomes that need a person already page (item-failed,
// run-failed, outbox-stale, nightly-missing, http-5xx).
var hostCategory = 'extend category = tostring(customDimensions.Category)'
resource hostErrors 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-dualsync-host-errors-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dualsync: host-errors'
    description: 'The Functions host logged errors or exceptions of its own (handler start-up or exit, bindings, listeners).'
    severity: 1
    enabled: true
    skipQueryValidation: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: t.fastFrequency
    windowSize: t.fastWindow
    criteria: {
      allOf: [
        {
          query: 'union (traces | where severityLevel >= 3), exceptions | ${hostCategory} | where category != "Host.Function.Console" and not(category startswith "Function.")'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: t.hostErrorCount
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Failed invocations of the queue and timer functions (requests without a URL; the HTTP ones are
// http-5xx). A failed queue message is retried and usually succeeds: a few are normal, so this is
// informational with a threshold; one that spends its retries is item-failed.
resource invocationFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-dualsync-invocation-failures-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dualsync: invocation-failures'
    description: 'Queue or timer invocations failed more often than the threshold (each is retried; the ones that need a person page as item-failed or run-failed).'
    severity: 3
    enabled: true
    skipQueryValidation: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: t.frequency
    windowSize: t.window
    criteria: {
      allOf: [
        {
          query: 'requests | where isempty(url) and success == false | extend invocations = toint(itemCount)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'invocations'
          operator: 'GreaterThan'
          threshold: t.invocationFailureCount
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// HTTP answers 500 and above (503: neither database, or storage, answers; 500: a bug). Requests
// stay under adaptive sampling (host.json excludes only traces and exceptions): each kept row
// stands for itemCount requests, so the rule sums itemCount instead of counting rows.
resource http5xx 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-dualsync-http-5xx-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'dualsync: http-5xx'
    description: 'The API answered 5xx more often than the threshold.'
    severity: 2
    enabled: true
    skipQueryValidation: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: t.frequency
    windowSize: t.window
    criteria: {
      allOf: [
        {
          query: 'requests | where isnotempty(url) and toint(resultCode) >= 500 | extend requestCount = toint(itemCount)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'requestCount'
          operator: 'GreaterThan'
          threshold: t.http5xxCount
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupName string = actionGroup.name
output alertRuleCount int = length(eventRules) + 4
