// The model catalogue through Power BI's built-in OData connector: refreshes in the service without
// a gateway. Credential: "Web API" with the ScoreBridge key (sent as the api_key query parameter).
let
    Source = OData.Feed("https://scorebridge.example.com/odata/", null, [Implementation = "2.0", ApiKeyName = "api_key"]),
    Models = Source{[Name = "Models", Signature = "table"]}[Data]
in
    Models
