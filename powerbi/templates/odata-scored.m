// A model's latest published scored table through the built-in OData connector, its columns under
// the model's own column names. The feed's property names are OData identifiers (the column
// "Monthly Charges ($)" is the property Monthly_Charges____, see docs/http-api.md); the Columns set
// gives each property its Label, the column's own name unless that would clash. Set Url and Model;
// the set is Scored_ and the model's name with "-" as "_" (the service document lists the sets).
// Credential: "Web API" with the ScoreBridge key.
let
    Url = "https://scorebridge.example.com/odata/",
    Model = "churn",
    Source = OData.Feed(Url, null, [Implementation = "2.0", ApiKeyName = "api_key"]),
    Scored = Source{[Name = "Scored_churn", Signature = "table"]}[Data],
    Columns = Source{[Name = "Columns", Signature = "table"]}[Data],
    Renames = Table.SelectRows(Columns, each [Model] = Model and [Property] <> [Label]),
    Named = Table.RenameColumns(Scored, List.Transform(Table.ToRecords(Renames), each {[Property], [Label]}))
in
    Named
