// The model catalogue with Web.Contents GET (no connector, no gateway): "Web API" credential with the
// ScoreBridge key; the first argument stays a fixed URL so scheduled refresh accepts it. The table is
// built with its type, so a server with no models yet gives an empty table with the same columns
// (Table.FromRecords of an empty list would have none, and the type step would fail).
let
    Response = Web.Contents("https://scorebridge.example.com/", [RelativePath = "api/v1/models", ApiKeyName = "api_key"]),
    Models = Json.Document(Response)[models],
    Typed = #table(
        type table [name = text, production_version = Int64.Type, description = text],
        List.Transform(Models, each {[name], [production_version], [description]})
    )
in
    Typed
