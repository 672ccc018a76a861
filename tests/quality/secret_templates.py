"""Templates of the realistic secrets corpus: each returns the parts of one text in a real-world format,
secrets marked with `S`; the `c_*` ones are clean texts whose decoys imitate a kind (hard negatives)."""

from __future__ import annotations

import base64
import json
import string
import uuid
from collections.abc import Callable

from tests.quality.secret_values import (ALNUM, HEX, HOSTS, NAMES, URLSAFE, USERS, S, _rand, aws_secret, azure_key,
                                         certificate, jwt, password, placeholder, private_key, provider_token,
                                         sas_sig, ssh_public, url_password)

# ---- templates: each returns the parts of one text ------------------------------------------------------
# password ------------------------------------------------------------------------------------------------


def t_env(rng):
    pw, tok = password(rng, "!%*+-_.@^"), password(rng, "-_.")
    return ["# .env for the billing service\nNODE_ENV=production\nPORT=8080\nDB_HOST=", rng.choice(HOSTS),
            "\nDB_USER=", rng.choice(USERS), "\nDB_PASSWORD=", S("password", pw), "\nSESSION_SECRET=",
            S("password", tok), "\nLOG_LEVEL=info\n"]


def t_yaml(rng):
    return ["spring:\n  datasource:\n    url: jdbc:postgresql://", rng.choice(HOSTS), ":5432/orders\n    username: ",
            rng.choice(USERS), "\n    password: ", S("password", password(rng, "!%*+-_.@^")),
            "\n    hikari:\n      maximum-pool-size: 10\n"]


def t_yaml_quoted(rng):
    q = rng.choice("\"'")
    return ["smtp:\n  host: smtp.office365.com\n  port: 587\n  user: noreply@acme.example\n  password: ", q,
            S("password", password(rng)), q, "\n  starttls: true\n"]


def t_toml(rng):
    return ["[database]\nhost = \"", rng.choice(HOSTS), "\"\nport = 5432\nuser = \"", rng.choice(USERS),
            "\"\npassword = \"", S("password", password(rng)), "\"\npool_size = 20\n"]


def t_ini(rng):
    return ["[client]\nuser=", rng.choice(USERS), "\npassword=", S("password", password(rng, "!%*+-_.@^")),
            "\nhost=", rng.choice(HOSTS), "\n\n[mysqldump]\nquick\nmax_allowed_packet=16M\n"]


def t_json(rng):
    cfg = {"name": "exporter", "endpoint": "https://api.acme.example/v2", "auth": {"username": rng.choice(USERS),
           "password": "@@PW@@"}, "timeout": 30}
    text = json.dumps(cfg, indent=2)
    a, b = text.split("@@PW@@")
    return [a, S("password", password(rng, "!%*+-_.@^")), b, "\n"]


def t_xml(rng):
    return ["<configuration>\n  <appSettings>\n    <add key=\"SmtpServer\" value=\"smtp.acme.example\" />\n"
            "    <add key=\"SmtpPassword\" value=\"", S("password", password(rng, "!%*+-_.@^")), "\" />\n"
            "  </appSettings>\n</configuration>\n"]


def t_xml_element(rng):
    return ["<settings>\n  <servers>\n    <server>\n      <id>nexus-releases</id>\n      <username>deployment</username>\n"
            "      <password>", S("password", password(rng, "!%*+-_.@^")), "</password>\n    </server>\n"
            "  </servers>\n</settings>\n"]


def t_compose(rng):
    return ["services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_USER: ", rng.choice(USERS),
            "\n      POSTGRES_PASSWORD: ", S("password", password(rng, "%*+-_.@^")), "\n      POSTGRES_DB: app\n"
            "    ports:\n      - \"5432:5432\"\n"]


def t_k8s_secret(rng):
    raw = password(rng)
    enc = base64.b64encode(raw.encode()).decode()
    return ["apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-credentials\ntype: Opaque\ndata:\n  username: ",
            base64.b64encode(rng.choice(USERS).encode()).decode(), "\n  password: ", S("password", enc), "\n"]


def t_python(rng):
    return ["import psycopg2\n\nconn = psycopg2.connect(\n    host=\"", rng.choice(HOSTS), "\",\n    user=\"",
            rng.choice(USERS), "\",\n    password=\"", S("password", password(rng)), "\",\n    dbname=\"orders\",\n)\n"]


def t_js(rng):
    return ["const transporter = nodemailer.createTransport({\n  host: 'smtp.acme.example',\n  auth: {\n    user: '",
            rng.choice(USERS), "',\n    pass: '", S("password", password(rng)), "',\n  },\n});\n"]


def t_java(rng):
    return ["DataSource ds = DataSourceBuilder.create()\n    .url(\"jdbc:mysql://", rng.choice(HOSTS), "/shop\")\n"
            "    .username(\"", rng.choice(USERS), "\")\n    .build();\nString apiToken = \"",
            S("password", _rand(rng, ALNUM, 32)), "\";\n"]


def t_go(rng):
    return ["cfg := &Config{\n\tAddr:     \"", rng.choice(HOSTS), ":6379\",\n\tPassword: \"",
            S("password", password(rng)), "\",\n\tDB:       0,\n}\n"]


def t_csharp(rng):
    return ["var conn = new SqlConnection(\"Server=", rng.choice(HOSTS), ";Database=Sales;User Id=",
            rng.choice(USERS), ";Password=", S("password", password(rng, "!%*+-_.@^")), ";Encrypt=True;\");\n"]


def t_shell(rng):
    pw = password(rng, "%+-_.@^")
    return ["$ history | tail -4\n  501  cd ~/deploy\n  502  export PGPASSWORD=", S("password", pw),
            "\n  503  psql -h ", rng.choice(HOSTS), " -U ", rng.choice(USERS), " -d orders\n  504  exit\n"]


def t_cli_flag(rng):
    return ["docker login registry.acme.example --username ci-bot --password ", S("password", password(rng, "%+-_.@^")),
            "\n"]


def t_log(rng):
    return ["2024-05-03T11:42:07.311Z DEBUG [auth] login attempt user=", rng.choice(USERS), " password=",
            S("password", password(rng, "!%*+-_.@^")), " ip=10.2.3.4 result=ok\n"]


def t_stack(rng):
    return ["Traceback (most recent call last):\n  File \"/app/sync.py\", line 88, in <module>\n    client.login(user, pw)\n"
            "  File \"/app/lib/client.py\", line 31, in login\n    raise AuthError(f\"login failed for {user} with "
            "password {pw}\")\nAuthError: login failed for ", rng.choice(USERS), " with password ",
            S("password", password(rng, "!%*+-_@^") + "7"), "\n"]


def t_ci(rng):
    return ["deploy:\n  stage: deploy\n  variables:\n    REGISTRY_PASSWORD: \"", S("password", password(rng)),
            "\"\n  script:\n    - helm upgrade --install api ./chart\n"]


EMAILS = {
    "en": ["Hi {n},\n\nyour account on the staging VPN is ready. Username: {u}\nPassword: ", "\n\nPlease change it after "
           "the first login.\n\nBest regards,\nIT Service Desk\n"],
    "de": ["Hallo {n},\n\nhier die Zugangsdaten für den Testserver.\nBenutzer: {u}\nPasswort: ", "\n\nBitte ändere das "
           "Passwort nach der ersten Anmeldung.\n\nViele Grüße\nIT-Support\n"],
    "fr": ["Bonjour {n},\n\nvoici vos identifiants pour l'extranet.\nIdentifiant : {u}\nMot de passe provisoire : ",
           "\n\nMerci de le modifier dès votre première connexion.\n\nCordialement,\nLe support\n"],
    "es": ["Hola {n}:\n\nTe envío el acceso al panel. Usuario: {u}\nla contraseña es ", " (cámbiala al entrar).\n\nSaludos,"
           "\nSoporte\n"],
    "it": ["Ciao {n},\n\necco le credenziali del gestionale.\nUtente: {u}\nPassword temporanea: ", "\n\nGrazie,\n"
           "Helpdesk\n"],
    "nl": ["Hoi {n},\n\nje account is aangemaakt. Gebruikersnaam: {u}\nWachtwoord: ", "\n\nMet vriendelijke groet,\n"
           "Servicedesk\n"],
    "pl": ["Cześć {n},\n\ndane do logowania: login {u}, hasło: ", "\nProszę zmienić hasło po pierwszym logowaniu.\n"],
    "pt": ["Olá {n},\n\no seu acesso foi criado. Utilizador: {u}\nSenha: ", "\n\nCumprimentos,\nSuporte TI\n"],
    "sv": ["Hej {n},\n\nhär är inloggningen till testmiljön: användare {u}, lösenord: ", "\n\nMvh\nIT-avdelningen\n"],
}


def t_email(rng):
    lang = rng.choice(sorted(EMAILS))
    a, b = EMAILS[lang]
    return [a.format(n=rng.choice(NAMES), u=rng.choice(USERS)), S("password", password(rng, "!#%*+-_@^") + "9"), b]


def t_ticket(rng):
    return ["JIRA OPS-", str(rng.randrange(1000, 9999)), ": cannot reach the reporting DB\n\nSteps: connect with user ",
            rng.choice(USERS), " and the password is ", S("password", password(rng, "!#%*+-_@^") + "3"),
            " (from the wiki). Error: FATAL: password authentication failed.\n"]


def t_php(rng):  # holdout
    return ["<?php\n$config = [\n    'db' => [\n        'host' => '", rng.choice(HOSTS), "',\n        'password' => '",
            S("password", password(rng)), "',\n    ],\n];\n"]


def t_ruby(rng):  # holdout
    return ["production:\n  adapter: postgresql\n  host: <%= ENV['DB_HOST'] %>\n  secret_key_base: ",
            S("password", _rand(rng, HEX, 128)), "\n"]


def t_ansible(rng):  # holdout
    return ["- name: create the app user\n  mysql_user:\n    name: ", rng.choice(USERS), "\n    password: \"",
            S("password", password(rng)), "\"\n    priv: '*.*:ALL'\n"]


def t_properties(rng):  # holdout
    return ["# application.properties\nspring.mail.host=smtp.acme.example\nspring.mail.username=alerts\n"
            "spring.mail.password=", S("password", password(rng, "!%*+-_.@^")), "\nspring.mail.port=587\n"]


# db_url -------------------------------------------------------------------------------------------------


def _db(rng, scheme, port, path="/app"):
    return [scheme, "://", rng.choice(USERS), ":", S("db_url", url_password(rng)), "@", rng.choice(HOSTS), port, path]


def t_db_env(rng):
    scheme, port = rng.choice([("postgres", ":5432"), ("postgresql", ":5432"), ("mysql", ":3306"), ("amqp", ":5672"),
                               ("amqps", ":5671"), ("mongodb", ":27017"), ("redis", ":6379"), ("mssql", ":1433")])
    return ["DATABASE_URL="] + _db(rng, scheme, port) + ["\nREDIS_URL=redis://", rng.choice(HOSTS), ":6379/0\n"]


def t_db_srv(rng):
    return ["mongo:\n  uri: \"mongodb+srv://", rng.choice(USERS), ":", S("db_url", url_password(rng)),
            "@cluster0.x1abc.mongodb.net/shop?retryWrites=true&w=majority\"\n"]


def t_redis_nouser(rng):
    return ["CELERY_BROKER_URL = \"redis://:", S("db_url", url_password(rng)), "@", rng.choice(HOSTS), ":6379/1\"\n"]


def t_jdbc(rng):
    return ["jdbc:sqlserver://", rng.choice(HOSTS), ":1433;databaseName=Sales;user=", rng.choice(USERS), ";password=",
            S("db_url", password(rng, "!%*+-_.@^")), ";encrypt=true\n"]


def t_db_log(rng):
    return ["[2024-04-11 09:12:55] ERROR sqlalchemy.pool: could not connect to "] + _db(rng, "postgresql", ":5432") + [
            ": connection refused\n"]


def t_git_url(rng):
    return ["$ git clone https://", rng.choice(USERS), ":", S("db_url", "ghp_" + _rand(rng, ALNUM, 36)),
            "@github.com/acme/infra.git\nCloning into 'infra'...\n"]


def t_ado(rng):  # holdout
    return ["\"ConnectionStrings\": {\n  \"Default\": \"Server=tcp:", rng.choice(HOSTS), ",1433;Initial Catalog=app;"
            "User ID=", rng.choice(USERS), ";Password=", S("db_url", password(rng, "!%*+-_.@^")), ";\"\n}\n"]


def t_broker_chat(rng):  # holdout
    return ["can someone check why the worker dies? it uses "] + _db(rng, "amqp", ":5672", "/%2f") + [
            " and crashes on start\n"]


# webhook ------------------------------------------------------------------------------------------------


def slack_hook(rng):
    return "T" + _rand(rng, string.ascii_uppercase + string.digits, 10) + "/B" + _rand(
        rng, string.ascii_uppercase + string.digits, 10) + "/" + _rand(rng, ALNUM, 24)


def t_slack(rng):
    return ["SLACK_WEBHOOK_URL=https://hooks.slack.com/services/", S("webhook", slack_hook(rng)), "\n"]


def t_slack_curl(rng):
    return ["curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"deploy done\"}' "
            "https://hooks.slack.com/services/", S("webhook", slack_hook(rng)), "\n"]


def t_discord(rng):
    return ["webhook = \"https://discord.com/api/webhooks/", S("webhook", str(rng.randrange(10**17, 10**19)) + "/" +
            _rand(rng, URLSAFE, 68)), "\"\n"]


def t_teams(rng):
    g = lambda: str(uuid.UUID(int=rng.getrandbits(128)))  # noqa: E731
    path = f"{g()}@{g()}/IncomingWebhook/{_rand(rng, HEX, 32)}/{g()}"
    return ["alerting:\n  teams_url: https://acme.webhook.office.com/webhookb2/", S("webhook", path), "\n"]


def t_signed_link(rng):  # holdout
    return ["The Power Automate flow URL is https://prod-27.westeurope.logic.azure.com:443/workflows/", _rand(rng, HEX, 32),
            "/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=",
            S("webhook", _rand(rng, URLSAFE, 43)), "\n"]


# cloud --------------------------------------------------------------------------------------------------


def t_aws_creds(rng):
    return ["[default]\naws_access_key_id = ", S("cloud", "AKIA" + _rand(rng, string.ascii_uppercase + "234567", 16)),
            "\naws_secret_access_key = ", S("cloud", aws_secret(rng)), "\nregion = eu-central-1\n"]


def t_aws_env(rng):
    return ["export AWS_ACCESS_KEY_ID=", S("cloud", "AKIA" + _rand(rng, string.ascii_uppercase + "234567", 16)),
            "\nexport AWS_SECRET_ACCESS_KEY=", S("cloud", aws_secret(rng)), "\n"]


def t_azure_conn(rng):
    return ["AZURE_STORAGE_CONNECTION_STRING=\"DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey=",
            S("cloud", azure_key(rng)), ";EndpointSuffix=core.windows.net\"\n"]


def t_azure_sas(rng):
    return ["Download: https://acmeprod.blob.core.windows.net/exports/report.csv?sv=2022-11-02&ss=b&srt=o&sp=r"
            "&se=2024-12-31T23:59:59Z&spr=https&sig=", S("cloud", sas_sig(rng)), "\n"]


def t_gcp_sa(rng):
    key = private_key(rng, "cloud", sep="\\n")
    return ["{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme-prod\",\n  \"private_key_id\": \"",
            _rand(rng, HEX, 40), "\",\n  \"private_key\": \"", *key, "\\n\",\n  \"client_email\": "
            "\"exporter@acme-prod.iam.gserviceaccount.com\",\n  \"client_id\": \"", str(rng.randrange(10**20)), "\"\n}\n"]


def t_servicebus(rng):  # holdout
    return ["Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=", S("cloud", azure_key(rng)[:44]), "\n"]


# provider_token ------------------------------------------------------------------------------------------


def t_token_env(rng):
    name = rng.choice(["GITHUB_TOKEN", "OPENAI_API_KEY", "STRIPE_KEY", "SLACK_BOT_TOKEN", "NPM_TOKEN", "HF_TOKEN"])
    return ["export ", name, "=", S("provider_token", provider_token(rng)), "\n"]


def t_token_code(rng):
    return ["from openai import OpenAI\n\nclient = OpenAI(api_key=\"", S("provider_token", provider_token(rng)),
            "\")\nprint(client.models.list())\n"]


def t_token_chat(rng):
    return ["hey, the CI fails with 401, I used this one: ", S("provider_token", provider_token(rng)),
            " — is it expired?\n"]


def t_token_npmrc(rng):
    return ["//registry.npmjs.org/:_authToken=", S("provider_token", "npm_" + _rand(rng, ALNUM, 36)),
            "\nalways-auth=true\n"]


def t_token_pypirc(rng):  # holdout
    return ["[pypi]\n  username = __token__\n  password = ", S("provider_token", "pypi-AgEIcHlwaS5vcmc" +
            _rand(rng, URLSAFE, 140)), "\n"]


def t_token_log(rng):  # holdout
    return ["2024-06-01 12:00:01 WARN github.client: request with token ", S("provider_token", provider_token(rng)),
            " returned 403 rate limited\n"]


# jwt ----------------------------------------------------------------------------------------------------


def t_jwt_header(rng):
    return ["curl https://api.acme.example/v1/orders -H \"Authorization: Bearer ", S("jwt", jwt(rng)), "\"\n"]


def t_jwt_log(rng):
    return ["INFO  2024-03-02 10:11:12 request_id=", str(uuid.UUID(int=rng.getrandbits(128))), " id_token=",
            S("jwt", jwt(rng)), " status=200\n"]


def t_jwt_json(rng):  # holdout
    return ["{\"access_token\": \"", S("jwt", jwt(rng)), "\", \"token_type\": \"Bearer\", \"expires_in\": 3600}\n"]


# private_key --------------------------------------------------------------------------------------------


def t_pem(rng):
    return ["Here is the deploy key, add it to the server:\n\n", *private_key(rng, "private_key"), "\n\nThanks!\n"]


def t_pem_yaml(rng):
    return ["tls:\n  cert: /etc/ssl/app.crt\n  key: |\n    ", *private_key(rng, "private_key", sep="\n    "), "\n"]


def t_pem_ticket(rng):  # holdout
    return ["Ticket #", str(rng.randrange(10**5)), ": the SFTP upload fails, this is the key we use:\n",
            *private_key(rng, "private_key"), "\nand the error is 'Permission denied (publickey)'.\n"]


# ---- clean texts: hard negatives of each kind ------------------------------------------------------------


def c_env_placeholders(rng):
    return ["# copy to .env and fill in\nDB_HOST=localhost\nDB_USER=app\nDB_PASSWORD=", placeholder(rng),
            "\nSECRET_KEY=", placeholder(rng), "\nSTRIPE_API_KEY=", placeholder(rng), "\n"]


def c_yaml_refs(rng):
    return ["env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: db-credentials\n"
            "        key: password\n  - name: API_TOKEN\n    value: ", rng.choice(["${API_TOKEN}", "\"{{ .Values.token }}\"",
            "$(API_TOKEN)"]), "\n  - name: MAX_TOKENS\n    value: \"4096\"\n"]


def c_code_refs(rng):
    return [rng.choice([
        "password = os.environ[\"DB_PASSWORD\"]\ntoken = get_token(session)\nself.password = password\n",
        "const apiKey = process.env.OPENAI_API_KEY;\nif (!apiKey) throw new Error('missing api key');\n",
        "String password = config.getProperty(\"db.password\");\nchar[] secret = console.readPassword();\n",
        "if user.password == password_hash(candidate):\n    return True\n",
        "password_min_length: 12\npassword_reset_ttl: 3600\ntoken_url: https://login.acme.example/oauth2/token\n",
        "def login(username, password):\n    token = auth.authenticate(username=username, password=password)\n",
    ])]


def c_masked(rng):
    return ["2024-05-03 11:42:07 INFO connecting to postgres://app:", rng.choice(["****", "xxxxx", "${PGPASSWORD}",
            "<password>"]), "@db.internal:5432/app\n2024-05-03 11:42:08 INFO login user=admin password=",
            rng.choice(["***", "[REDACTED]", "<hidden>", "********"]), "\n"]


def c_prose(rng):
    return [rng.choice([
        "Your password must be at least 12 characters long and contain a digit. The password is case-sensitive.\n",
        "Passwort vergessen? Klicken Sie auf 'Passwort zurücksetzen', um ein neues Passwort festzulegen.\n",
        "Le mot de passe est incorrect. Veuillez réessayer ou contacter le support.\n",
        "La contraseña es demasiado corta: usa al menos doce caracteres.\n",
        "Het wachtwoord is verlopen, kies een nieuw wachtwoord.\n",
        "Token budget: the model accepts up to 128k tokens; set max_tokens to limit the answer.\n",
        "We rotate API keys every 90 days. Secrets live in Vault, never in the repository.\n",
    ])]


def c_urls(rng):
    return ["DATABASE_URL=postgres://", rng.choice(HOSTS), ":5432/app\nREPO=git@github.com:acme/infra.git\n"
            "SENTRY=https://sentry.io/organizations/acme/issues/\nDOCS=https://", rng.choice(USERS),
            "@docs.acme.example/wiki\nCALLBACK=https://app.acme.example/oauth/callback?state=",
            _rand(rng, HEX, 16), "\n"]


def c_certificate(rng):
    label = rng.choice(["CERTIFICATE", "PUBLIC KEY", "PGP PUBLIC KEY BLOCK", "CERTIFICATE REQUEST"])
    return ["Here is our public certificate for the mTLS setup:\n\n", certificate(rng, label), "\n"]


def c_ssh_public(rng):
    return ["# ~/.ssh/authorized_keys\n", ssh_public(rng), "\n", ssh_public(rng), "\n"]


def c_lockfile(rng):
    sha512 = base64.b64encode(bytes(rng.randrange(256) for _ in range(64))).decode()
    h1 = base64.b64encode(bytes(rng.randrange(256) for _ in range(32))).decode()
    return ["\"node_modules/lodash\": {\n  \"version\": \"4.17.21\",\n  \"resolved\": \"https://registry.npmjs.org/lodash/-/"
            "lodash-4.17.21.tgz\",\n  \"integrity\": \"sha512-", sha512, "\"\n}\n",
            "golang.org/x/crypto v0.21.0 h1:", h1, "\n",
            "[[package]]\nname = \"requests\"\nchecksum = \"", _rand(rng, HEX, 64), "\"\n"]


def c_ids(rng):
    return ["commit ", _rand(rng, HEX, 40), "\nAuthor: ", rng.choice(NAMES), " <dev@acme.example>\n\n    fix token refresh "
            "race (#", str(rng.randrange(9999)), ")\n\nrequest_id=", str(uuid.UUID(int=rng.getrandbits(128))),
            " trace_id=", _rand(rng, HEX, 32), " image=ghcr.io/acme/api@sha256:", _rand(rng, HEX, 64), "\n"]


def c_docs_examples(rng):
    return [rng.choice([
        "Set `OPENAI_API_KEY` to your key (it starts with `sk-`), e.g. `export OPENAI_API_KEY=sk-...`.\n",
        "Authorization: Bearer <token>\nContent-Type: application/json\n",
        "To create a token go to Settings → Developer settings → Personal access tokens (classic).\n",
        "webhook_url: https://hooks.slack.com/services/XXXXXXXXX/XXXXXXXXX/XXXXXXXXXXXXXXXXXXXXXXXX\n",
        "curl -u $USER:$TOKEN https://api.acme.example/v1/status\n",
        "jwt: eyJhbGciOi... (truncated)\n",
    ])]


def c_mixed_config(rng):
    return ["[server]\nbind = 0.0.0.0:8443\nworkers = 4\ntls_cert = /etc/ssl/certs/app.pem\ntls_key = "
            "/etc/ssl/private/app.key\npassword_file = /run/secrets/db_password\ntoken_ttl_seconds = 900\n"
            "secret_name = prod/app/db\nauth_method = oauth2\nkey_id = ", _rand(rng, HEX, 16), "\n"]


def c_data_uri(rng):  # holdout
    img = base64.b64encode(bytes(rng.randrange(256) for _ in range(60))).decode()
    return ["<img alt=\"logo\" src=\"data:image/png;base64,", img, "\"> key visual for the campaign\n"]


def c_ticket_clean(rng):  # holdout
    return ["Ticket #", str(rng.randrange(10**5)), ": user ", rng.choice(NAMES), " cannot log in, password reset "
            "sent to the registered address. Order 7731-", str(rng.randrange(10**6)), ", version 2.14.3, build ",
            _rand(rng, HEX, 7), ".\n"]


TEMPLATES: list[tuple[str, Callable, bool]] = [
    ("password", t_env, False), ("password", t_yaml, False), ("password", t_yaml_quoted, False),
    ("password", t_toml, False), ("password", t_ini, False), ("password", t_json, False), ("password", t_xml, False),
    ("password", t_xml_element, False), ("password", t_compose, False), ("password", t_k8s_secret, False),
    ("password", t_python, False), ("password", t_js, False), ("password", t_java, False), ("password", t_go, False),
    ("password", t_csharp, False), ("password", t_shell, False), ("password", t_cli_flag, False),
    ("password", t_log, False), ("password", t_stack, False), ("password", t_ci, False), ("password", t_email, False),
    ("password", t_ticket, False), ("password", t_php, True), ("password", t_ruby, True),
    ("password", t_ansible, True), ("password", t_properties, True),
    ("db_url", t_db_env, False), ("db_url", t_db_srv, False), ("db_url", t_redis_nouser, False),
    ("db_url", t_jdbc, False), ("db_url", t_db_log, False), ("db_url", t_git_url, False), ("db_url", t_ado, True),
    ("db_url", t_broker_chat, True),
    ("webhook", t_slack, False), ("webhook", t_slack_curl, False), ("webhook", t_discord, False),
    ("webhook", t_teams, False), ("webhook", t_signed_link, True),
    ("cloud", t_aws_creds, False), ("cloud", t_aws_env, False), ("cloud", t_azure_conn, False),
    ("cloud", t_azure_sas, False), ("cloud", t_gcp_sa, False), ("cloud", t_servicebus, True),
    ("provider_token", t_token_env, False), ("provider_token", t_token_code, False),
    ("provider_token", t_token_chat, False), ("provider_token", t_token_npmrc, False),
    ("provider_token", t_token_pypirc, True), ("provider_token", t_token_log, True),
    ("jwt", t_jwt_header, False), ("jwt", t_jwt_log, False), ("jwt", t_jwt_json, True),
    ("private_key", t_pem, False), ("private_key", t_pem_yaml, False), ("private_key", t_pem_ticket, True),
    # clean texts: the kind their decoys imitate
    ("password", c_env_placeholders, False), ("password", c_yaml_refs, False), ("password", c_code_refs, False),
    ("password", c_masked, False), ("password", c_prose, False), ("password", c_mixed_config, False),
    ("password", c_ticket_clean, True), ("db_url", c_urls, False), ("private_key", c_certificate, False),
    ("private_key", c_ssh_public, False), ("cloud", c_lockfile, False), ("provider_token", c_ids, False),
    ("provider_token", c_docs_examples, False), ("jwt", c_data_uri, True),
]

FILLER = ["", "Can you check this config?\n\n", "Why does this fail?\n```\n", "Kannst du das prüfen?\n\n",
          "Peux-tu regarder ce fichier ?\n\n", "FYI, from the incident channel:\n> "]


