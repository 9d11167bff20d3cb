// Command keys manages the auth key file: create a key (printed once), revoke one, list them.
// The pepper comes from AUTH_PEPPER or AUTH_PEPPER_FILE, as for the auth function; with neither
// set, from the local run's pepper file (.run/auth/pepper, below the current directory) when
// there is one, so that keys for `make run` are made from the repository's root with nothing
// to set.
//
//	keys create --file keys.json --tenant acme --project web --scopes ingest,query [--description "..."]
//	keys revoke --file keys.json --id <key id>
//	keys list   --file keys.json
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

const usage = `usage:
  keys create --file FILE --tenant TENANT --project PROJECT --scopes ingest,query,llm [--description TEXT]
  keys revoke --file FILE --id KEYID
  keys list   --file FILE
create prints the new API key once on stdout; it cannot be shown again.`

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "keys:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer, now func() time.Time) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "key file (JSON, or YAML if it ends in .yaml/.yml)")
	switch args[0] {
	case "create":
		tenant := fs.String("tenant", "", "tenant the key belongs to")
		project := fs.String("project", "", "project the key belongs to")
		scopes := fs.String("scopes", "", "comma-separated scopes: ingest, query, llm")
		desc := fs.String("description", "", "free text shown by list")
		if err := parse(fs, args[1:], file); err != nil {
			return err
		}
		sc, err := authclient.ParseScopes(*scopes)
		if err != nil {
			return fmt.Errorf("--scopes: %w", err)
		}
		pepper, err := loadPepper(getenv, stderr)
		if err != nil {
			return err
		}
		key, rec, err := auth.AddKey(*file, pepper, auth.NewKey{
			Tenant: *tenant, Project: *project, Scopes: sc, Description: *desc,
		}, now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created key %s for %s/%s with scopes %v in %s; store it now, it is not shown again\n",
			rec.ID, rec.Tenant, rec.Project, rec.Scopes, *file)
		_, err = fmt.Fprintln(stdout, key)
		return err
	case "revoke":
		id := fs.String("id", "", "key id to revoke")
		if err := parse(fs, args[1:], file); err != nil {
			return err
		}
		if *id == "" {
			return errors.New("--id is required")
		}
		rec, err := auth.RevokeKey(*file, *id)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "revoked key %s (%s/%s)\n", rec.ID, rec.Tenant, rec.Project)
		return err
	case "list":
		if err := parse(fs, args[1:], file); err != nil {
			return err
		}
		kf, err := auth.ReadKeyFile(*file)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tPROJECT\tSCOPES\tSTATUS\tCREATED\tDESCRIPTION")
		for _, r := range kf.Keys {
			sc := make([]string, len(r.Scopes))
			for i, s := range r.Scopes {
				sc[i] = string(s)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Tenant, r.Project, strings.Join(sc, ","),
				r.Status, r.CreatedAt.Format(time.RFC3339), r.Description)
		}
		return tw.Flush()
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q (want create, revoke or list)", args[0])
	}
}

// localPepperFile is where the local run (`make run`, deploy/local) keeps its pepper, relative
// to the repository's root.
const localPepperFile = ".run/auth/pepper"

// loadPepper reads the pepper as the auth function does, falling back to the local run's.
func loadPepper(getenv func(string) string, stderr io.Writer) (auth.Pepper, error) {
	value, file := getenv("AUTH_PEPPER"), getenv("AUTH_PEPPER_FILE")
	if value == "" && file == "" {
		if _, err := os.Stat(localPepperFile); err != nil {
			return auth.Pepper{}, fmt.Errorf("one of AUTH_PEPPER and AUTH_PEPPER_FILE is required (or the local run's %s below the current directory)", localPepperFile)
		}
		// Said on stderr: a key made with the wrong pepper never verifies, and nothing else
		// would tell why.
		fmt.Fprintf(stderr, "using the local run's pepper %s (AUTH_PEPPER_FILE chooses another)\n", localPepperFile)
		file = localPepperFile
	}
	return auth.LoadPepper(value, file)
}

func parse(fs *flag.FlagSet, args []string, file *string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *file == "" {
		return errors.New("--file is required")
	}
	return nil
}
