// The model catalogue with Web.Contents GET (no connector, no gateway): "Web API" credential with the
// ScoreBridge key; the first argument stays a fixed URL so scheduled refresh accepts it.
let
    Response = Web.Contents("https://scorebridge.example.com/", [RelativePath = "api/v1/models", ApiKeyName = "api_key"]),
    Models = Table.FromRecords(Json.Document(Response)[models]),
    Typed = Table.TransformColumnTypes(Models, {{"name", type text}, {"production_version", Int64.Type}, {"description", type text}})
in
    Typed
