// Live quality from recorded outcomes per model version and day of prediction, beside the
// version's holdout metrics, through the built-in OData connector with the filter folded into
// the request: chart RocAuc and HoldoutRocAuc against WindowStart. Credential: "Web API" key.
let
    Source = OData.Feed("https://scorebridge.example.com/odata/", null, [Implementation = "2.0", ApiKeyName = "api_key"]),
    Quality = Source{[Name = "OutcomeQuality", Signature = "table"]}[Data],
    Churn = Table.SelectRows(Quality, each [Model] = "churn" and [Matched] >= 30),
    WithDrop = Table.AddColumn(Churn, "RocAucDrop", each [HoldoutRocAuc] - [RocAuc], type nullable number)
in
    WithDrop
