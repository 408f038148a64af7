// The embedded host's real Durable Task engine: a WebJobs host with Microsoft.Azure.WebJobs.Extensions.DurableTask
// (the extension Azure's Functions host loads) and its Azure Storage provider, running this project's JavaScript
// orchestrators and activities in the Node process that started it.
//
// Started by local/durable-host.ts, never by hand. Inputs (environment):
//   AzureWebJobsStorage        connection string of the local storage (Azurite: blob, queue and table)
//   FUNCTIONS_WORKER_RUNTIME   "node": the extension speaks its out-of-proc JSON protocol (the one durable-functions 3.x speaks)
//   DURABLE_HOST_FUNCTIONS     JSON [{ "name": "...", "trigger": "orchestrationTrigger" | "activityTrigger" }]
//   DURABLE_HOST_OPTIONS       JSON of host.json's extensions.durableTask (settings already resolved by the Node side)
//   DURABLE_HOST_WEBHOOK_URL   the public base the client binding data advertises (…/runtime/webhooks/durabletask)
// Protocol with the Node side (NDJSON): stdout carries ONLY protocol lines, every log goes to stderr.
//   host -> node  {"kind":"ready","client":{...durable client binding data...}}
//   host -> node  {"id":N,"kind":"orchestrator"|"activity","name":"...","input":"<json text>"}
//   node -> host  {"id":N,"ok":true,"result":"<json text>"} | {"id":N,"ok":false,"message":"...","stack":"..."}
//   node -> host  {"kind":"http","rid":N,"method":"...","url":"...","headers":{...},"body":"..."}   (durable client API)
//   host -> node  {"kind":"http","rid":N,"status":S,"headers":{...},"body":"..."}
// The extension's own local RPC endpoint (an unauthenticated HTTP listener on 127.0.0.1:17071) is turned off
// (localRpcEndpointEnabled: false, set by the Node side): its management API is reached only through this
// channel — the extension's webhook handler, the entry the Functions host uses — so nothing but the Node side,
// which guards it with the master key, can call it.
using System.Net.Http;
using Microsoft.Azure.WebJobs.Host.Config;
using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Text;
using Microsoft.Azure.WebJobs;
using Microsoft.Azure.WebJobs.Extensions.DurableTask;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace OdooMta.DurableHost;

/// <summary>The channel to the Node side over this process's stdin/stdout.</summary>
public static class Bridge
{
    private static readonly ConcurrentDictionary<long, TaskCompletionSource<JObject>> Pending = new();
    private static readonly SemaphoreSlim WriteLock = new(1, 1);
    private static readonly TextWriter Out = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = true };
    private static long nextId;
    /// <summary>the extension's HTTP management API handler (its webhook entry), set once the host started</summary>
    public static IAsyncConverter<HttpRequestMessage, HttpResponseMessage>? Api;

    public static void StartReading()
    {
        _ = Task.Run(async () =>
        {
            using var stdin = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
            string? line;
            while ((line = await stdin.ReadLineAsync().ConfigureAwait(false)) != null)
            {
                if (line.Length == 0) continue;
                var msg = JObject.Parse(line);
                if ((string?)msg["kind"] == "http") { _ = Task.Run(() => ServeHttp(msg)); continue; }
                if (Pending.TryRemove((long)msg["id"]!, out var tcs)) tcs.TrySetResult(msg);
            }
            // the Node side is gone: nothing can run any more; stop rather than fail every work item
            Console.Error.WriteLine("durable-host: the Node side closed the channel; exiting");
            Environment.Exit(0);
        });
    }

    /// <summary>One durable client API request from the Node side, answered by the extension's handler.</summary>
    static async Task ServeHttp(JObject msg)
    {
        var answer = new JObject { ["kind"] = "http", ["rid"] = msg["rid"] };
        try
        {
            if (Api == null) throw new InvalidOperationException("the durable host is not started yet");
            using var req = new HttpRequestMessage(new HttpMethod((string)msg["method"]!), (string)msg["url"]!);
            var headers = msg["headers"] as JObject ?? new JObject();
            string body = (string?)msg["body"] ?? "";
            if (body.Length > 0)
                req.Content = new StringContent(body, Encoding.UTF8, "application/json");
            foreach (var (k, v) in headers)
                if (!k.Equals("content-type", StringComparison.OrdinalIgnoreCase))
                    req.Headers.TryAddWithoutValidation(k, (string?)v);
            using var res = await Api.ConvertAsync(req, CancellationToken.None).ConfigureAwait(false);
            var outHeaders = new JObject();
            foreach (var h in res.Headers) outHeaders[h.Key.ToLowerInvariant()] = string.Join(", ", h.Value);
            if (res.Content != null)
                foreach (var h in res.Content.Headers) outHeaders[h.Key.ToLowerInvariant()] = string.Join(", ", h.Value);
            answer["status"] = (int)res.StatusCode;
            answer["headers"] = outHeaders;
            answer["body"] = res.Content == null ? "" : await res.Content.ReadAsStringAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            answer["status"] = 500;
            answer["headers"] = new JObject { ["content-type"] = "application/json; charset=utf-8" };
            answer["body"] = new JObject { ["error"] = e.Message }.ToString(Formatting.None);
        }
        await Send(answer).ConfigureAwait(false);
    }

    public static async Task Send(JObject msg)
    {
        await WriteLock.WaitAsync().ConfigureAwait(false);
        try { await Out.WriteLineAsync(msg.ToString(Formatting.None)).ConfigureAwait(false); }
        finally { WriteLock.Release(); }
    }

    private static async Task<JObject> Call(string kind, string name, string input)
    {
        long id = Interlocked.Increment(ref nextId);
        var tcs = new TaskCompletionSource<JObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        Pending[id] = tcs;
        await Send(new JObject { ["id"] = id, ["kind"] = kind, ["name"] = name, ["input"] = input }).ConfigureAwait(false);
        return await tcs.Task.ConfigureAwait(false);
    }

    // A failure is given the shape of the Functions host's RpcException message: the extension parses it to
    // recover the OrchestratorState that durable-functions appends after "$OutOfProcData$:".
    private static Exception Failure(JObject res) =>
        new($"Result: Failure\nException: {res["message"]}\nStack: {res["stack"]}");

    /// <summary>Out-of-proc orchestrator: context JSON in, OrchestratorState JSON out.</summary>
    public static async Task<string> RunOrchestrator(string name, string context)
    {
        var res = await Call("orchestrator", name, context).ConfigureAwait(false);
        if ((bool)res["ok"]!) return (string)res["result"]!;
        throw Failure(res);
    }

    /// <summary>Activity: the stored input (JSON) in, the activity's JSON result out.</summary>
    public static async Task<JToken> RunActivity(string name, JToken? input)
    {
        // an activity called without an input (callActivity(name)) is bound with a null JToken
        var res = await Call("activity", name, input?.ToString(Formatting.None) ?? "null").ConfigureAwait(false);
        if ((bool)res["ok"]!) return JToken.Parse((string)res["result"]!);
        throw Failure(res);
    }

    /// <summary>Receives the durable client binding data (with rpcBaseUrl), as a JS function's client input would.</summary>
    public static Task ClientProbe(string client) =>
        Send(new JObject { ["kind"] = "ready", ["client"] = JObject.Parse(client) });
}

// The public base of the management webhooks the client binding data advertises (creation/status URLs);
// the JS client itself calls rpcBaseUrl.
sealed class WebHookProvider(Uri url) : Microsoft.Azure.WebJobs.Host.Config.IWebHookProvider
{
    public Uri GetUrl(Microsoft.Azure.WebJobs.Host.Config.IExtensionConfigProvider extension) => url;
}

sealed class FixedTypeLocator(params Type[] types) : ITypeLocator
{
    public IReadOnlyList<Type> GetTypes() => types;
}

public static class Program
{
    public const string ClientProbeName = "DurableHostClientProbe";

    // One [FunctionName] method per JS orchestration/activity, forwarding to Bridge; plus the client probe.
    // (WebJobs discovers functions on types; the JS functions are only known at run time.)
    static Type EmitForwarders(IEnumerable<(string Name, string Trigger)> fns)
    {
        var ab = AssemblyBuilder.DefineDynamicAssembly(new AssemblyName("JsForwarders"), AssemblyBuilderAccess.Run);
        var tb = ab.DefineDynamicModule("JsForwarders").DefineType("JsForwarders.Functions",
            TypeAttributes.Public | TypeAttributes.Class | TypeAttributes.Abstract | TypeAttributes.Sealed);
        var fnName = typeof(FunctionNameAttribute).GetConstructor([typeof(string)])!;
        int i = 0;
        foreach (var (name, trigger) in fns)
        {
            bool orch = trigger.Equals("orchestrationTrigger", StringComparison.OrdinalIgnoreCase);
            if (!orch && !trigger.Equals("activityTrigger", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"function {name}: trigger {trigger} is not run by the durable host");
            var m = tb.DefineMethod($"F{i++}", MethodAttributes.Public | MethodAttributes.Static,
                orch ? typeof(Task<string>) : typeof(Task<JToken>), [orch ? typeof(string) : typeof(JToken)]);
            m.SetCustomAttribute(new CustomAttributeBuilder(fnName, [name]));
            var p = m.DefineParameter(1, ParameterAttributes.None, orch ? "context" : "input");
            p.SetCustomAttribute(new CustomAttributeBuilder(
                (orch ? typeof(OrchestrationTriggerAttribute) : typeof(ActivityTriggerAttribute)).GetConstructor(Type.EmptyTypes)!, []));
            var il = m.GetILGenerator();
            il.Emit(OpCodes.Ldstr, name);
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Call, typeof(Bridge).GetMethod(orch ? nameof(Bridge.RunOrchestrator) : nameof(Bridge.RunActivity))!);
            il.Emit(OpCodes.Ret);
        }
        var probe = tb.DefineMethod("ClientProbe", MethodAttributes.Public | MethodAttributes.Static, typeof(Task), [typeof(string)]);
        probe.SetCustomAttribute(new CustomAttributeBuilder(fnName, [ClientProbeName]));
        probe.SetCustomAttribute(new CustomAttributeBuilder(typeof(NoAutomaticTriggerAttribute).GetConstructor(Type.EmptyTypes)!, []));
        probe.DefineParameter(1, ParameterAttributes.None, "client").SetCustomAttribute(
            new CustomAttributeBuilder(typeof(DurableClientAttribute).GetConstructor(Type.EmptyTypes)!, []));
        var pil = probe.GetILGenerator();
        pil.Emit(OpCodes.Ldarg_0);
        pil.Emit(OpCodes.Call, typeof(Bridge).GetMethod(nameof(Bridge.ClientProbe))!);
        pil.Emit(OpCodes.Ret);
        return tb.CreateType()!;
    }

    static string Line(string s) => s.ReplaceLineEndings(" ").Trim();

    public static async Task<int> Main()
    {
        string Need(string k) => Environment.GetEnvironmentVariable(k) is { Length: > 0 } v
            ? v : throw new InvalidOperationException($"durable-host: {k} is not set (this program is started by local/durable-host.ts)");
        var functions = JArray.Parse(Need("DURABLE_HOST_FUNCTIONS"))
            .Select(f => ((string)f["name"]!, (string)f["trigger"]!)).ToList();
        var options = JObject.Parse(Need("DURABLE_HOST_OPTIONS"));
        Need("AzureWebJobsStorage");
        string webhook = Need("DURABLE_HOST_WEBHOOK_URL");
        Need("FUNCTIONS_WORKER_RUNTIME");
        Bridge.StartReading();
        var forwarders = EmitForwarders(functions);

        // host.json's extensions.durableTask, where WebJobs binds the extension's options from
        var config = new JObject { ["AzureWebJobs"] = new JObject { ["Extensions"] = new JObject { ["DurableTask"] = options } } };
        var host = new HostBuilder()
            .ConfigureAppConfiguration(c => c.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(config.ToString()))))
            .ConfigureLogging(l =>
            {
                l.ClearProviders();
                l.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
                // every log line on stderr: stdout is the protocol channel
                l.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
                l.SetMinimumLevel(LogLevel.Warning);
                l.AddFilter("Host.Triggers.DurableTask", Enum.Parse<LogLevel>(Environment.GetEnvironmentVariable("DURABLE_HOST_LOG_LEVEL") ?? "Warning"));
            })
            .ConfigureWebJobs(b => b.AddDurableTask())
            .ConfigureServices(s =>
            {
                s.AddSingleton<ITypeLocator>(new FixedTypeLocator(forwarders));
                s.AddSingleton<Microsoft.Azure.WebJobs.Host.Config.IWebHookProvider>(new WebHookProvider(new Uri(webhook)));
            })
            .UseConsoleLifetime(o => o.SuppressStatusMessages = true)
            .Build();
        try
        {
            await host.StartAsync();
        }
        catch (Exception e)
        {
            // one line the Node side quotes first (an unhandled exception would abort the process with only a
            // stack): the chain of causes names what failed, e.g. the storage endpoint that refused the connection
            var chain = new List<string>();
            for (var c = e; c != null && chain.Count < 6; c = c.InnerException)
                chain.Add($"{c.GetType().Name}: {Line(c.Message)}");
            Console.Error.WriteLine("durable-host: could not start: " + string.Join(" <- ", chain));
            return 2;
        }
        Bridge.Api = host.Services.GetServices<IExtensionConfigProvider>().OfType<DurableTaskExtension>().First();
        await host.Services.GetRequiredService<IJobHost>().CallAsync(ClientProbeName);
        await host.WaitForShutdownAsync();
        return 0;
    }
}
