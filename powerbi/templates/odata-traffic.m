// Requests, errors and latency per model version and minute (summed over every server), through the
// built-in OData connector, with the filter folded into the request. Credential: "Web API" key.
let
    Source = OData.Feed("https://scorebridge.example.com/odata/", null, [Implementation = "2.0", ApiKeyName = "api_key"]),
    Traffic = Source{[Name = "Traffic", Signature = "table"]}[Data],
    Churn = Table.SelectRows(Traffic, each [Model] = "churn")
in
    Churn
